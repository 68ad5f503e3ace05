"""Flash-sale benchmark: 1,000 buyers at once for 200 card keys on the embedded stack.

Reports placing throughput and latency, the time from payment to delivery, and how close the
platform runs to the database's own write capacity: delivered orders per second against the raw
MongoDB write rate measured in the same run on the same server, divided by the writes one order
needs (counted from the server's op counters during the sale).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import psutil
from motor.motor_asyncio import AsyncIOMotorClient

from tests.bench.cpu import CpuMeter
from tests.bench.running import platform_with_flows
from tests.scenarios import duplicate_deliveries, pay_to_delivery, percentile, prepare, run, status_at

BUYERS = int(os.environ.get("BENCH_BUYERS", "1000"))
KEYS = int(os.environ.get("BENCH_KEYS", "200"))
# How often each buyer looks at their order until it settles: as often as the storefront's order
# page does (every 2 s). Looking ten times a second, as the tests do, puts 2,000 order reads a
# second on the same two cores as the sale and measures the watching more than the platform.
POLL_SECONDS = float(os.environ.get("BENCH_POLL_SECONDS", "2"))


async def raw_write_rate(url: str, seconds: float = 5.0, concurrency: int = 16) -> tuple[float, int]:
    """Single-document inserts per second, as many in flight as the platform's services keep,
    and how many were made."""
    client: AsyncIOMotorClient[Any] = AsyncIOMotorClient(url)
    collection = client["bench_baseline"]["writes"]
    count = 0
    deadline = time.perf_counter() + seconds

    async def writer() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await collection.insert_one({"payload": "x" * 200})
            count += 1

    start = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(concurrency)))
    rate = count / (time.perf_counter() - start)
    await client.drop_database("bench_baseline")
    client.close()
    return rate, count


async def ops_so_far(url: str) -> dict[str, int]:
    """The server's op counters: insert, update, delete (writes), query, getmore, command."""
    client: AsyncIOMotorClient[Any] = AsyncIOMotorClient(url)
    counters = (await client.admin.command("serverStatus"))["opcounters"]
    client.close()
    return {name: int(n) for name, n in counters.items()}


def writes_of(ops: dict[str, int]) -> int:
    return ops["insert"] + ops["update"] + ops["delete"]


async def by_collection(url: str, lock: str) -> dict[str, int]:
    """Commands so far per namespace from `top`: `writeLock` counts insert, update, delete and
    findAndModify commands (one per command however many documents it touches), `readLock`
    counts finds, getMores, counts and aggregates."""
    client: AsyncIOMotorClient[Any] = AsyncIOMotorClient(url)
    totals = (await client.admin.command("top"))["totals"]
    client.close()
    return {ns: int(v[lock]["count"]) for ns, v in totals.items() if ns != "note"}


async def writes_by_collection(url: str) -> dict[str, int]:
    return await by_collection(url, "writeLock")


async def reads_by_collection(url: str) -> dict[str, int]:
    return await by_collection(url, "readLock")


async def main() -> dict[str, Any]:
    run_dir = Path(".kameng/bench/flash-sale")
    async with platform_with_flows(run_dir) as (infra, flows):
        baseline_cpu = CpuMeter()
        baseline_cpu.start()
        baseline, inserts = await raw_write_rate(infra["MONGODB_URL"])
        baseline_cpu.stop()
        sale = await prepare(flows, buyers=BUYERS, keys=KEYS)
        ops_before = await ops_so_far(infra["MONGODB_URL"])
        by_collection_before = await writes_by_collection(infra["MONGODB_URL"])
        reads_before = await reads_by_collection(infra["MONGODB_URL"])
        cpu = CpuMeter()
        cpu.start()
        await run(flows, sale, poll_seconds=POLL_SECONDS)
        cpu.stop()
        ops_after = await ops_so_far(infra["MONGODB_URL"])
        ops = {name: ops_after[name] - ops_before.get(name, 0) for name in ops_after}
        writes = writes_of(ops)
        by_collection = {
            ns: n - by_collection_before.get(ns, 0)
            for ns, n in (await writes_by_collection(infra["MONGODB_URL"])).items()
        }
        reads = {ns: n - reads_before.get(ns, 0) for ns, n in (await reads_by_collection(infra["MONGODB_URL"])).items()}
        await duplicate_deliveries(infra["KAFKA_BOOTSTRAP_SERVERS"])
    delivered = [o for o in sale.final.values() if o["status"] == "delivered"]
    paid_to_delivered = pay_to_delivery(delivered)
    # The sale ends at the last delivery as the order's own history records it, not when its
    # buyer next looked.
    last_delivery = max((t for o in delivered if (t := status_at(o, "delivered")) is not None), default=time.time())
    sale_seconds = last_delivery - sale.started_wall
    delivered_per_second = len(delivered) / sale_seconds
    writes_per_order = writes / max(len(delivered), 1)
    ceiling = baseline / writes_per_order
    # The ceiling above counts writes only. What the database really spends on an order (its
    # reads, transactions and larger documents too) in units of one raw insert's CPU gives the
    # rate at which the database process alone would be saturated.
    insert_cpu_ms = baseline_cpu.spent.get("mongodb", 0.0) * 1000 / max(inserts, 1)
    order_db_cpu_ms = cpu.spent.get("mongodb", 0.0) * 1000 / max(len(delivered), 1)
    insert_equivalents = order_db_cpu_ms / insert_cpu_ms if insert_cpu_ms else 0.0
    platform_cpu_seconds = sum(cpu.spent.values()) - cpu.spent.get("load generator", 0.0)
    return {
        "buyers": BUYERS,
        "keys": KEYS,
        "answers": dict(sale.answers),
        "delivered": len(delivered),
        "placing_seconds": round(sale.placed_at - sale.started, 2),
        "requests_per_second": round(BUYERS / (sale.placed_at - sale.started), 1),
        "place_latency_ms": {p: round(percentile(sale.latencies, p) * 1000, 1) for p in (50, 95, 99)},
        "pay_to_delivery_ms": {p: round(percentile(paid_to_delivered, p) * 1000, 1) for p in (50, 95, 99)},
        "poll_seconds": POLL_SECONDS,
        "sale_to_last_delivery_seconds": round(sale_seconds, 2),
        "delivered_orders_per_second": round(delivered_per_second, 1),
        "raw_mongo_inserts_per_second": round(baseline, 1),
        "mongo_writes_per_delivered_order": round(writes_per_order, 1),
        "ceiling_orders_per_second": round(ceiling, 1),
        "ratio_to_ceiling": round(delivered_per_second / ceiling, 3),
        "mongodb_cpu_ms_per_raw_insert": round(insert_cpu_ms, 3),
        "mongodb_cpu_ms_per_delivered_order": round(order_db_cpu_ms, 1),
        "raw_insert_equivalents_per_delivered_order": round(insert_equivalents, 1),
        "database_cpu_ceiling_orders_per_second": round(baseline / max(insert_equivalents, 1e-9), 1),
        "ratio_to_database_cpu_ceiling": round(delivered_per_second * insert_equivalents / baseline, 3),
        # If the platform had both cores to itself (the load generator elsewhere) and used them
        # fully, at its measured CPU per order.
        "machine_cpu_ceiling_orders_per_second": round(
            (psutil.cpu_count() or 1) * len(delivered) / max(platform_cpu_seconds, 1e-9), 1
        ),
        # Other server commands per order (finds, getMores, and commands: transactions'
        # commits, findAndModify, aggregates): the database's CPU goes to these too.
        "mongo_ops_per_delivered_order": {
            name: round(n / max(len(delivered), 1), 1) for name, n in sorted(ops.items()) if n
        },
        # Where the machine's CPU went during the sale (placing, paying, delivering, replays).
        "cpu": cpu.report(per=max(len(delivered), 1)),
        "writes_per_delivered_order_by_collection": {
            ns: round(n / max(len(delivered), 1), 2)
            for ns, n in sorted(by_collection.items(), key=lambda kv: -kv[1])
            if n
        },
        "reads_per_delivered_order_by_collection": {
            ns: round(n / max(len(delivered), 1), 2) for ns, n in sorted(reads.items(), key=lambda kv: -kv[1]) if n
        },
    }
