"""The flash sale (秒杀) the platform is measured by: N buyers at once for K card keys, with the
bus's deliveries duplicated afterwards. Used by tests/e2e/test_flash_sale.py (asserts) and
tests/bench/bench_flash_sale.py (measures)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.contracts import topics
from shared.messaging.scan import header, scan
from tests.flows import Flows

PRICE_CENTS = 1000


@dataclass
class FlashSale:
    sku_id: str
    codes: list[str]
    buyers: list[str]
    funding_cents: int
    answers: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    placed: dict[str, str] = field(default_factory=dict)  # order id -> buyer
    retries: int = 0
    final: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: float = 0.0
    placed_at: float = 0.0
    settled_at: float = 0.0
    started_wall: float = 0.0  # the same instant as `started`, on the clock of the orders' history


def status_at(order: dict[str, Any], status: str) -> float | None:
    """When the order's history says it reached `status` (epoch seconds), if it did."""
    for entry in order.get("history", []):
        if entry["status"] == status:
            return datetime.fromisoformat(entry["at"]).timestamp()
    return None


def pay_to_delivery(orders: list[dict[str, Any]]) -> list[float]:
    """Seconds from `paid` to `delivered` of each order whose history has both."""
    return [
        d - p
        for o in orders
        if (p := status_at(o, "paid")) is not None and (d := status_at(o, "delivered")) is not None
    ]


async def prepare(flows: Flows, *, buyers: int, keys: int) -> FlashSale:
    sku_id = await flows.create_sku(name="秒杀 100元", price_cents=PRICE_CENTS, max_per_order=1)
    codes = [f"FLASH-{sku_id[:6]}-{i:05d}-{i * 7919 % 100003:05d}" for i in range(keys)]
    report = await flows.import_keys(sku_id, codes)
    assert report["accepted"] == keys, report
    await flows.wait_orderable(sku_id, keys)
    users = await flows.new_buyers(buyers, PRICE_CENTS)
    return FlashSale(sku_id=sku_id, codes=codes, buyers=users, funding_cents=PRICE_CENTS * buyers)


async def run(flows: Flows, sale: FlashSale, *, poll_seconds: float = 0.1) -> None:
    """Everyone buys at once, then each buyer watches their order until it settles, looking
    every `poll_seconds` (the tests look often to finish soon; the benchmarks look as often as
    the storefront's order page does, so the watching does not compete with the platform)."""
    gate = asyncio.Event()

    async def buy(user_id: str) -> None:
        await gate.wait()
        t0 = time.perf_counter()
        # As a real client does: one Idempotency-Key per purchase, and a retry when the answer
        # was lost (504/503), which can never buy twice.
        key = f"flash-{user_id}"
        for _ in range(5):
            response = await flows.order(user_id, sale.sku_id, idempotency_key=key)
            if response.status_code not in (409, 503, 504) or response.json()["type"].endswith("out-of-stock"):
                break
            sale.retries += 1
            await asyncio.sleep(0.5)
        sale.latencies.append(time.perf_counter() - t0)
        sale.answers[response.status_code] += 1
        if response.status_code in (201, 402):
            sale.placed[response.json().get("order_id")] = user_id

    tasks = [asyncio.create_task(buy(u)) for u in sale.buyers]
    await asyncio.sleep(0.1)
    sale.started, sale.started_wall = time.perf_counter(), time.time()
    gate.set()  # everyone at once
    await asyncio.gather(*tasks)
    sale.placed_at = time.perf_counter()
    watching = (flows.wait_final(u, o, timeout=120, interval=poll_seconds) for o, u in sale.placed.items())
    finals = await asyncio.gather(*watching)
    sale.final = {o["order_id"]: o for o in finals}
    sale.settled_at = time.perf_counter()


async def duplicate_deliveries(bootstrap: str) -> int:
    """Send every payment capture and every order.paid of the run again, as a broker or a callback
    retry would. Returns how many messages were repeated."""
    records = [
        r
        for r in await scan(bootstrap, [topics.WALLET, topics.ORDER])
        if header(r, "event_type") in ("wallet.payment-captured", "order.paid")
    ]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for r in records:
            await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
        await producer.flush()
    finally:
        await producer.stop()
    return len(records)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else 0.0
