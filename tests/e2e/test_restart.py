"""A restart of the whole platform mid-saga (issue 12): stack and services stopped and started
again on the same database, as `make dev` does across Ctrl-C. The embedded broker keeps nothing,
so the events in flight at the stop are gone; the relays see a new broker and publish their
outboxes' recent records again, the inboxes skip what was applied, and every order settles
exactly once.

This test runs its own stack (the session's stack cannot be restarted under the other tests).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.platform import Platform, default_base_env
from deploy.stack import EmbeddedStack
from tests.conftest import RUN_DIR
from tests.flows import Flows
from tests.helpers import auth

PRICE = 1000
PAID_BUYERS = 4  # paid while fulfilment is down: order.paid is lost with the broker
UNPAID_BUYERS = 3  # placed while the wallet is down too: order.payment-requested is lost


def platform_env(infra: dict[str, str]) -> dict[str, str]:
    env = default_base_env(infra)
    env.update({"KAMENG_ENV": "test", "OTEL_METRIC_EXPORT_INTERVAL": "600000", "PLACE_WAIT_SECONDS": "1"})
    return env


class Restartable:
    """A stack and platform on one run folder, stopped and started again (new ports, new broker,
    same database files)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.lives = 0
        self.stack: EmbeddedStack | None = None
        self.platform: Platform | None = None

    def start(self) -> Platform:
        self.lives += 1
        self.stack = EmbeddedStack(run_dir=self.run_dir / "stack", use_environment=False)
        infra = self.stack.start()
        self.platform = Platform(base_env=platform_env(infra), logs_dir=self.run_dir / f"platform-{self.lives}")
        self.platform.start()
        return self.platform

    @property
    def bootstrap(self) -> str:
        assert self.stack is not None
        return self.stack.env()["KAFKA_BOOTSTRAP_SERVERS"]

    def stop(self) -> None:
        if self.platform is not None:
            self.platform.stop()
            self.platform = None
        if self.stack is not None:
            self.stack.stop()
            self.stack = None


@pytest.fixture
def restartable() -> Iterator[Restartable]:
    r = Restartable(RUN_DIR / "restart")
    try:
        yield r
    finally:
        r.stop()


async def test_orders_in_flight_settle_exactly_once_across_a_whole_platform_restart(restartable: Restartable) -> None:
    platform = restartable.start()
    flows = Flows(platform.gateway_url, restartable.bootstrap, concurrency=20)
    try:
        sku_id = await flows.create_sku(price_cents=PRICE)
        codes = [f"RESTART-{sku_id[:8]}-{i:03d}" for i in range(PAID_BUYERS + UNPAID_BUYERS + 3)]
        await flows.import_keys(sku_id, codes)
        await flows.wait_orderable(sku_id, len(codes))
        buyers = await flows.new_buyers(PAID_BUYERS + UNPAID_BUYERS, 5 * PRICE)

        # Fulfilment down: these orders are paid, their order.paid waits on the broker.
        platform.kill("fulfilment")
        orders: dict[str, str] = {}
        for buyer in buyers[:PAID_BUYERS]:
            r = await flows.order(buyer, sku_id, 1, idempotency_key=f"restart-{buyer}")
            assert r.status_code == 201, r.text
            orders[buyer] = r.json()["order_id"]
        for buyer in buyers[:PAID_BUYERS]:
            await flows.wait_final(buyer, orders[buyer], final={"paid"}, timeout=30)
        # Wallet down too: these are placed, their payment request waits on the broker.
        platform.kill("wallet")
        for buyer in buyers[PAID_BUYERS:]:
            r = await flows.order(buyer, sku_id, 1, idempotency_key=f"restart-{buyer}")
            assert r.status_code == 201, r.text
            assert r.json()["status"] == "pending_payment"
            orders[buyer] = r.json()["order_id"]
    finally:
        await flows.close()

    # Everything stops (the broker, with the events on it); the database files stay.
    restartable.stop()
    time.sleep(0.5)
    platform = restartable.start()
    flows = Flows(platform.gateway_url, restartable.bootstrap, concurrency=20)
    try:
        settled = await asyncio.gather(*(flows.wait_final(b, o, timeout=120) for b, o in orders.items()))
        assert [o["status"] for o in settled] == ["delivered"] * len(orders), settled
        delivered: list[str] = []
        for buyer, order_id in orders.items():
            keys = await flows.card_keys(buyer, order_id)
            assert len(keys) == 1
            delivered += keys
            # Debited exactly once, however often the payment request was published.
            assert await flows.balance(buyer) == 4 * PRICE
            history = [h["status"] for h in (await flows.get_order(buyer, order_id))["history"]]
            assert history.count("paid") == 1 and history.count("delivered") == 1
        assert len(set(delivered)) == len(delivered) and set(delivered) <= set(codes)  # no key twice
        stock = await flows.call("GET", f"/api/v1/admin/skus/{sku_id}/stock", headers=flows.admin, expect=200)
        assert stock.json()["sold"] == len(orders)
        # Still a working platform: a new order after the restart is delivered too.
        [late] = await flows.new_buyers(1, PRICE)
        r = await flows.order(late, sku_id, 1)
        assert r.status_code == 201, r.text
        assert (await flows.wait_final(late, r.json()["order_id"]))["status"] == "delivered"
        assert (await flows.call("GET", "/api/v1/orders", headers=auth(late), expect=200)).json()["total"] == 1
    finally:
        await flows.close()
    order_log = (restartable.run_dir / "platform-2" / "order.log").read_text(errors="replace")
    assert "will be published again" in order_log
