"""Business signals, recorded by the services' use cases (over the same in-memory fakes as their
use-case tests): orders by stage and delivery mode and the pay→delivered histogram, counted once
per committed change; top-ups by outcome; card-key stock per SKU on sale and the manual queue;
webhook deliveries by outcome."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.fulfilment import metrics as fulfilment_metrics
from services.fulfilment.domain import TaskStatus
from services.fulfilment.usecases.stock import sample_signals
from services.order.usecases import saga
from services.support import metrics as support_metrics
from services.wallet.usecases import topups
from shared.contracts.envelope import utcnow
from shared.inventory import Stock
from shared.messaging.outbox import Tx
from tests.unit import test_order_usecases as orders_world
from tests.unit import test_wallet_usecases as wallet_world


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def orders(stage: str, mode: str = "auto") -> float:
    return value("kameng_orders_total", stage=stage, delivery_mode=mode)


def timed(le: str | None = None, mode: str = "auto") -> float:
    if le is None:
        return value("kameng_order_pay_to_delivered_seconds_count", delivery_mode=mode)
    return value("kameng_order_pay_to_delivered_seconds_bucket", delivery_mode=mode, le=le)


async def test_orders_by_stage_and_pay_to_delivered_once_per_committed_change() -> None:
    w = orders_world.World()
    w.sku(stock=5)
    before = {s: orders(s) for s in ("placed", "paid", "delivered", "refunded")}
    before_timed, before_fast, before_3s = timed(), timed("1.5"), timed("3.0")

    order = await w.place(w.buyer("u1", 3 * orders_world.PRICE))
    await w.settle()
    assert orders("placed") == before["placed"] + 1 and orders("paid") == before["paid"] + 1
    paid_at = w.store.orders[order["_id"]]["paid_at"]

    async def fails_after_delivering(tx: Tx) -> None:
        await saga.delivered(tx, w.deps, order["_id"], paid_at + timedelta(seconds=1), "d0")
        raise RuntimeError("the transaction aborts")

    with pytest.raises(RuntimeError):
        await w.uow.run(fails_after_delivering)
    assert orders("delivered") == before["delivered"] and timed() == before_timed  # never committed

    async def delivers(tx: Tx) -> None:
        await saga.delivered(tx, w.deps, order["_id"], paid_at + timedelta(seconds=1.2), "d1")
        await saga.delivered(tx, w.deps, order["_id"], paid_at + timedelta(seconds=9), "d1")  # refused: no move

    await w.uow.run(delivers)
    assert orders("delivered") == before["delivered"] + 1
    assert timed() == before_timed + 1
    assert timed("1.5") == before_fast + 1 and timed("3.0") == before_3s + 1  # 1.2 s: within 3 s

    async def refunds(tx: Tx) -> None:
        await saga.after_sales_refund(tx, w.deps, order["_id"], "t1")
        await saga.refund_completed(tx, w.deps, order["_id"])

    await w.uow.run(refunds)
    assert orders("refunded") == before["refunded"] + 1
    # Every stage and mode has its series from the start (a first order is an increase).
    labels = {"stage": "refunded", "delivery_mode": "manual"}
    assert REGISTRY.get_sample_value("kameng_orders_total", labels) is not None


class CommittingUnitOfWork(wallet_world.FakeUnitOfWork):
    """The wallet tests' fake, plus what the real one does after a commit: its after-commit actions."""

    async def run(self, fn: Any) -> Any:
        actions: list[Any] = []

        async def keeping_actions(tx: Tx) -> Any:
            result = await fn(tx)
            actions[:] = tx.post_commit
            return result

        result = await super().run(keeping_actions)
        for action in actions:
            await action()
        return result


def wallet(**options: Any) -> wallet_world.World:
    w = wallet_world.World(**options)
    w.uow = CommittingUnitOfWork(w.store)
    w.deps = dataclasses.replace(w.deps, uow=w.uow)
    return w


async def test_topups_by_outcome_and_channel() -> None:
    def topped(outcome: str, channel: str) -> float:
        return value("kameng_topups_total", outcome=outcome, channel=channel)

    before = {k: topped(*k) for k in [("started", "alipay"), ("succeeded", "alipay"), ("failed", "bank")]}
    refused_before = topped("provider_error", "wechat")
    w = wallet()
    user = await w.user()
    topup = await topups.create_topup(w.deps, user, 1000, "alipay", None)
    await topups.handle_notification(w.deps, "alipay", w.notification(topup))
    await topups.handle_notification(w.deps, "alipay", w.notification(topup))  # duplicate: no second count
    bank = await topups.create_topup(w.deps, user, 1000, "bank", None)
    await topups.reject_bank_topup(w.deps, "staff-1", bank["_id"], "no transfer arrived")
    assert topped("started", "alipay") == before[("started", "alipay")] + 1
    assert topped("succeeded", "alipay") == before[("succeeded", "alipay")] + 1
    assert topped("failed", "bank") == before[("failed", "bank")] + 1
    refusing = wallet(refuse=True)
    with pytest.raises(Exception, match="payment provider"):
        await topups.create_topup(refusing.deps, await refusing.user(), 1000, "wechat", None)
    assert topped("provider_error", "wechat") == refused_before + 1


class FakeVault:
    def __init__(self, skus: dict[str, dict[str, Any]], pending_tasks: int) -> None:
        self.skus = skus
        self.pending_tasks = pending_tasks

    async def vault_skus(self) -> list[str]:
        return list(self.skus)

    async def get_sku(self, sku_id: str) -> dict[str, Any] | None:
        return self.skus.get(sku_id)

    async def count_tasks(self, status: TaskStatus) -> int:
        assert status is TaskStatus.PENDING
        return self.pending_tasks


class FakeCounters:
    async def stock(self, sku_id: str) -> Stock:
        return Stock(supply=10, held=3)


async def test_stock_per_sku_on_sale_and_the_manual_queue() -> None:
    skus = {
        "mt-on-sale": {"on_sale": True, "delivery_mode": "auto"},
        "mt-off-sale": {"on_sale": True, "delivery_mode": "auto"},
        "mt-direct": {"on_sale": True, "delivery_mode": "direct"},
    }
    vault = FakeVault(skus, pending_tasks=4)
    deps: Any = SimpleNamespace(store=vault, inventory=FakeCounters())
    await sample_signals(deps)
    assert value("kameng_card_key_stock_available", sku="mt-on-sale") == 7  # supply minus holds
    assert REGISTRY.get_sample_value("kameng_card_key_stock_available", {"sku": "mt-off-sale"}) == 7
    assert REGISTRY.get_sample_value("kameng_card_key_stock_available", {"sku": "mt-direct"}) is None
    assert value("kameng_manual_queue_tasks") == 4
    skus["mt-off-sale"]["on_sale"] = False  # taken off sale: no series left to alert on
    await sample_signals(deps)
    assert REGISTRY.get_sample_value("kameng_card_key_stock_available", {"sku": "mt-off-sale"}) is None
    assert fulfilment_metrics.SAMPLE_SECONDS > 0


def test_webhook_deliveries_by_outcome() -> None:
    before = {o: value("kameng_webhook_deliveries_total", outcome=o) for o in ("delivered", "failed", "dead")}
    now = utcnow()
    support_metrics.deliveries(
        [
            ("d1", {"status": "delivered", "delivered_at": now}, {}),
            ("d2", {"status": "pending", "attempts": 2}, {}),
            ("d3", {"status": "dead", "dead_at": now}, {}),
            ("d4", {"status": "delivered"}, {}),
        ]
    )
    after = {o: value("kameng_webhook_deliveries_total", outcome=o) for o in before}
    assert after == {"delivered": before["delivered"] + 2, "failed": before["failed"] + 1, "dead": before["dead"] + 1}
