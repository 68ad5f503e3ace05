"""Steady-load benchmark (issue 13, target 4): orders arriving open-loop at a fixed rate, as
buyers do on an ordinary evening, instead of all at once.

First the platform's delivery capacity is measured in the same run: a burst of orders for as
many keys as buyers (every order is delivered), delivered orders per second from the first
request to the last delivery. Then orders arrive open-loop (each at its scheduled time, whether
or not earlier ones were answered: a closed loop would slow down with the platform and hide the
queue) at half that capacity and at the full capacity, each for `BENCH_STEADY_SECONDS`, and the
time from payment to delivery (the order's own history: `paid` to `delivered`) is reported as
p50/p95/p99, with the rate actually delivered. Nothing passes or fails on a time.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.bench.running import platform_with_flows
from tests.flows import Flows
from tests.scenarios import PRICE_CENTS, percentile, prepare, run

BURST = int(os.environ.get("BENCH_STEADY_BURST", "150"))
SECONDS = float(os.environ.get("BENCH_STEADY_SECONDS", "30"))


def _at(order: dict[str, Any], status: str) -> float | None:
    for entry in order.get("history", []):
        if entry["status"] == status:
            return datetime.fromisoformat(entry["at"]).timestamp()
    return None


async def capacity(flows: Flows) -> dict[str, Any]:
    """Delivered orders per second when `BURST` buyers order `BURST` keys at once."""
    sale = await prepare(flows, buyers=BURST, keys=BURST)
    await run(flows, sale)
    delivered = [o for o in sale.final.values() if o["status"] == "delivered"]
    return {
        "orders": BURST,
        "delivered": len(delivered),
        "delivered_orders_per_second": round(len(delivered) / (sale.settled_at - sale.started), 2),
    }


async def open_loop(flows: Flows, rate: float) -> dict[str, Any]:
    """Orders at `rate` per second for `SECONDS`, each at its own scheduled time."""
    count = max(1, round(rate * SECONDS))
    sku_id = await flows.create_sku(name=f"稳态 {rate:.1f}/s", price_cents=PRICE_CENTS, max_per_order=1)
    codes = [f"STEADY-{sku_id[:6]}-{i:05d}" for i in range(count)]
    report = await flows.import_keys(sku_id, codes)
    assert report["accepted"] == count, report
    await flows.wait_orderable(sku_id, count)
    buyers = await flows.new_buyers(count, PRICE_CENTS)
    placed: dict[str, str] = {}
    statuses: dict[int, int] = {}
    late: list[float] = []
    start = time.perf_counter() + 0.5

    async def buy(i: int, user_id: str) -> None:
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        late.append(time.perf_counter() - due)  # how far the load generator itself fell behind
        response = await flows.order(user_id, sku_id, idempotency_key=f"steady-{user_id}")
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code == 201:
            placed[response.json()["order_id"]] = user_id

    await asyncio.gather(*(buy(i, u) for i, u in enumerate(buyers)))
    finals = await asyncio.gather(*(flows.wait_final(u, o, timeout=180) for o, u in placed.items()))
    done = time.perf_counter()
    delivered = [o for o in finals if o["status"] == "delivered"]
    pay_to_delivery = [
        d - p for o in delivered if (p := _at(o, "paid")) is not None and (d := _at(o, "delivered")) is not None
    ]
    return {
        "target_orders_per_second": round(rate, 2),
        "orders": count,
        "answers": statuses,
        "delivered": len(delivered),
        "delivered_orders_per_second": round(len(delivered) / (done - start), 2),
        "generator_lag_p99_ms": round(percentile(late, 99) * 1000, 1),
        "pay_to_delivery_ms": {p: round(percentile(pay_to_delivery, p) * 1000, 1) for p in (50, 95, 99)},
    }


async def main() -> dict[str, Any]:
    run_dir = Path(".kameng/bench/steady")
    async with platform_with_flows(run_dir) as (_, flows):
        burst = await capacity(flows)
        full = float(burst["delivered_orders_per_second"])
        half = await open_loop(flows, full / 2)
        at_full = await open_loop(flows, full)
    return {"capacity": burst, "half_capacity": half, "full_capacity": at_full, "seconds_per_rate": SECONDS}
