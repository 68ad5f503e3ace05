"""Scale past one machine (issue 13): a flash sale with TWO processes each of order, fulfilment and
wallet. The second process of each has the first one's environment and its own port, so it joins
the same Kafka consumer groups (`<service>.<topic>`) and shares MongoDB and Redis. Half the buyers
order through the gateway (which talks to the first order process), the other half straight to the
second order process's port.

The invariants are the flash sale's: exactly as many delivered as keys, no key in two orders,
every other order refunded or cancelled exactly once, money conserved, the stock counters agree
with the vault; and each replica did its share of the consuming (counted from its own `/metrics`).

Topics have `KAFKA_TOPIC_PARTITIONS` partitions (6 by default, what the tests use), so a group of
two members splits them; with one partition the second member would idle.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from deploy.platform import Platform, ServiceProcess
from deploy.stack import free_port
from tests.flows import Flows
from tests.helpers import auth
from tests.scenarios import PRICE_CENTS, prepare

BUYERS, KEYS = 200, 50
REPLICATED = ("order", "fulfilment", "wallet")
APPLIED = re.compile(r'^kameng_consumer_events_applied_total\{handler="([^"]+)",type="([^"]+)"\} ([0-9.e+]+)$', re.M)


@pytest.fixture
def replicas(platform: Platform) -> Iterator[dict[str, ServiceProcess]]:
    """A second process of each replicated service, stopped (gracefully: it leaves its groups)
    when the test ends."""
    second: dict[str, ServiceProcess] = {}
    try:
        for name in REPLICATED:
            first = platform.processes[name]
            port = free_port()
            replica = ServiceProcess(
                name=name,
                port=port,
                env={**first.env, "PORT": str(port)},
                log_path=platform.logs_dir / f"{name}-2.log",
            )
            replica.start()
            second[name] = replica
            platform.processes[f"{name}-2"] = replica  # so wait_ready knows it
        platform.wait_ready(*(f"{n}-2" for n in REPLICATED))
        yield second
    finally:
        for name, replica in second.items():
            replica.stop()
            platform.processes.pop(f"{name}-2", None)


HANDLING = re.compile(r'^kameng_consumer_handling_duration_seconds_(sum|count)\{handler="([^"]+)"\} ([0-9.e+]+)$', re.M)


def handling(url: str) -> dict[str, tuple[float, float]]:
    """{handler: (seconds, events)} this process spent handling events, retries included."""
    found: dict[str, list[float]] = {}
    for kind, handler, value in HANDLING.findall(httpx.get(f"{url}/metrics", timeout=10).text):
        found.setdefault(handler, [0.0, 0.0])[0 if kind == "sum" else 1] = float(value)
    return {h: (v[0], v[1]) for h, v in found.items()}


def applied(url: str) -> Counter[str]:
    """Events this one process applied, by event type."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    counts: Counter[str] = Counter()
    for _handler, event_type, value in APPLIED.findall(text):
        counts[event_type] += int(float(value))
    return counts


async def until_both_consume(platform: Platform, replicas: dict[str, ServiceProcess], timeout: float = 30) -> None:
    """The groups settle after the second members join (a rebalance): wait until every process has
    applied a canary (`platform.events` is consumed by each service's group, keyed by a fresh id
    each time, so a few canaries reach both members)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            for name in REPLICATED:
                await client.post(f"{platform.url(name)}/internal/canary")
            await asyncio.sleep(0.5)
            idle = [
                url
                for name in REPLICATED
                for url in (platform.url(name), replicas[name].url)
                if not applied(url)["platform.canary"]
            ]
            if not idle:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"processes that never consumed a canary: {idle}")


@pytest.mark.timeout(420)
async def test_flash_sale_on_two_replicas(
    platform: Platform, replicas: dict[str, ServiceProcess], infra: dict[str, str]
) -> None:
    bootstrap = infra["KAFKA_BOOTSTRAP_SERVERS"]
    flows = Flows(platform.gateway_url, bootstrap, concurrency=200)
    direct = Flows(replicas["order"].url, bootstrap, concurrency=200)  # the second order process's port
    try:
        await until_both_consume(platform, replicas)
        sale = await prepare(flows, buyers=BUYERS, keys=KEYS)
        before = {url: applied(url) for name in REPLICATED for url in (platform.url(name), replicas[name].url)}

        gate = asyncio.Event()
        answers: Counter[int] = Counter()
        placed: dict[str, str] = {}  # order id -> buyer
        placed_via: Counter[str] = Counter()

        async def buy(i: int, user_id: str) -> None:
            via, door = ("gateway", flows) if i % 2 == 0 else ("order-2", direct)
            await gate.wait()
            for _ in range(5):  # as a client does: same key, retried when the answer was lost
                response = await door.order(user_id, sale.sku_id, idempotency_key=f"replicas-{user_id}")
                if response.status_code not in (409, 503, 504) or response.json()["type"].endswith("out-of-stock"):
                    break
                await asyncio.sleep(0.5)
            answers[response.status_code] += 1
            if response.status_code in (201, 402):
                placed[response.json()["order_id"]] = user_id
                placed_via[via] += 1

        # Warm both doors the same way before the gate opens: every buyer previews through the
        # door it will buy through. The second order process is fresh, and its first hundred
        # concurrent requests would otherwise queue for new MongoDB and Redis connections
        # (PyMongo opens two at a time) while the first process, warm from `prepare`, sells
        # every key; a race the test is not about.
        async def preview(i: int, user_id: str) -> None:
            door = flows if i % 2 == 0 else direct
            await door.call(
                "POST",
                "/api/v1/orders/quote",
                json={"sku_id": sale.sku_id, "quantity": 1},
                headers=auth(user_id),
                expect=200,
            )

        await asyncio.gather(*(preview(i, u) for i, u in enumerate(sale.buyers)))

        tasks = [asyncio.create_task(buy(i, u)) for i, u in enumerate(sale.buyers)]
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        gate.set()
        await asyncio.gather(*tasks)
        finals = await asyncio.gather(*(flows.wait_final(u, o, timeout=240) for o, u in placed.items()))
        settled = time.perf_counter() - started
        statuses = Counter(o["status"] for o in finals)
        print(f"answers {answers}, placed via {placed_via}, orders {statuses}, settled in {settled:.1f} s")

        assert statuses["delivered"] == KEYS, (statuses, answers)
        assert answers[409] + len(placed) == BUYERS, answers  # everyone else was turned away at the door
        assert set(statuses) <= {"delivered", "refunded", "cancelled"}, statuses
        assert placed_via["gateway"] and placed_via["order-2"], placed_via  # both order processes placed
        for order in finals:  # each settled exactly once
            history = [h["status"] for h in order["history"]]
            assert all(history.count(s) <= 1 for s in ("paid", "delivered", "refunded")), history

        delivered = [o["order_id"] for o in finals if o["status"] == "delivered"]
        keys = await asyncio.gather(*(flows.card_keys(placed[o], o) for o in delivered))
        handed_out = [code for codes in keys for code in codes]
        assert all(len(k) == 1 for k in keys)
        assert len(handed_out) == KEYS and len(set(handed_out)) == KEYS and set(handed_out) <= set(sale.codes)

        balances = await asyncio.gather(*(flows.balance(u) for u in sale.buyers))
        assert sum(PRICE_CENTS - (b or 0) for b in balances) == KEYS * PRICE_CENTS  # money conserved

        stock = await stock_settled(flows, sale.sku_id)
        assert stock["sold"] == KEYS and stock["available"] == 0, stock
        assert stock["supply"] == stock["available"] and stock["reserved"] == 0, stock

        # Each replica did part of the work its group had: the orders' payments (wallet),
        # their deliveries (fulfilment), and their payment results (order).
        work = {
            "wallet": "order.payment-requested",
            "fulfilment": "order.paid",
            "order": "wallet.payment-captured",
        }
        shares: dict[str, tuple[int, int]] = {}
        for name, event_type in work.items():
            first, second = (
                applied(url)[event_type] - before[url][event_type] for url in (platform.url(name), replicas[name].url)
            )
            shares[name] = (first, second)
        print(f"{', '.join(f'{n} {a} + {b} {work[n]}' for n, (a, b) in shares.items())}")
        for name in REPLICATED:  # the per-event cost behind docs/scaling.md's partition count
            for url in (platform.url(name), replicas[name].url):
                spent = {h: f"{1000 * t / n:.1f} ms x {n:.0f}" for h, (t, n) in handling(url).items() if n}
                relay = re.findall(
                    r"^kameng_outbox_(published_total|publish_duration_seconds_(?:sum|count))(?:\{[^}]*\})? (\S+)$",
                    httpx.get(f"{url}/metrics", timeout=10).text,
                    re.M,
                )
                print(f"{name} {url}: {spent}; relay {relay}")
        for first, second in shares.values():
            assert first > 0 and second > 0, shares  # both members of the group owned partitions
        assert sum(shares["fulfilment"]) >= KEYS, shares  # every delivered order was paid and handled
    finally:
        await flows.close()
        await direct.close()


async def stock_settled(flows: Flows, sku_id: str) -> dict[str, Any]:
    """The counters agree with the vault once fulfilment has applied its last change."""
    deadline = time.monotonic() + 15
    while True:
        stock: dict[str, Any] = (
            await flows.call("GET", f"/api/v1/admin/skus/{sku_id}/stock", headers=flows.admin, expect=200)
        ).json()
        if (stock["supply"] == stock["available"] and stock["reserved"] == 0) or time.monotonic() > deadline:
            return stock
        await asyncio.sleep(0.3)
