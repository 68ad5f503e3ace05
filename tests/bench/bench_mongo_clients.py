"""motor against PyMongo's own async client on the calls the hot paths make (issue 13).

motor, which every store uses today, reached its end of life in May 2026 and runs PyMongo's
synchronous client in a thread pool; `pymongo.AsyncMongoClient` is its official successor and
speaks to the server from the event loop. Both are measured here in the same run, against the
same MongoDB-wire server, with the same concurrency (16 in flight, as the services keep):

- `find_one` by `_id` (the order an Idempotency-Key names, read on every sold-out request);
- `insert_one` (an inbox or outbox record);
- a transaction of two inserts (`with_transaction`, what every unit of work commits);
- `find(...).to_list(20)` (an order-center page).

The ratio is PyMongo async's operations/s over motor's: above 1, moving the stores would pay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import AsyncMongoClient

from deploy.stack import EmbeddedStack

OPERATIONS = 2000
IN_FLIGHT = 16


async def rate(op: Callable[[int], Awaitable[Any]], n: int = OPERATIONS) -> float:
    """Operations per second of `op(i)` for i in range(n), IN_FLIGHT at a time."""
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await op(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return round(n / (time.perf_counter() - started), 1)


async def measure(client: Any, db: Any, *, motor: bool) -> dict[str, float]:
    coll = db["bench"]
    await coll.delete_many({})
    await coll.insert_many([{"_id": f"doc-{i}", "user": f"u{i % 50}", "n": i} for i in range(500)])
    await coll.create_index("user")

    async def find_one(i: int) -> None:
        await coll.find_one({"_id": f"doc-{i % 500}"})

    async def insert_one(i: int) -> None:
        await coll.insert_one({"n": i})

    async def transaction(i: int) -> None:
        async def both(session: Any) -> None:
            await coll.insert_one({"t": i, "k": 1}, session=session)
            await coll.insert_one({"t": i, "k": 2}, session=session)

        session = await client.start_session() if motor else client.start_session()
        async with session:
            await session.with_transaction(both)

    async def page(i: int) -> None:
        await coll.find({"user": f"u{i % 50}"}).sort("n", -1).to_list(20)

    for op in (find_one, insert_one, transaction, page):  # warm: pools, connections, indexes
        await rate(op, 100)
    return {
        "find_one_per_s": await rate(find_one),
        "insert_one_per_s": await rate(insert_one),
        "transaction_per_s": await rate(transaction, OPERATIONS // 4),
        "page_per_s": await rate(page),
    }


async def main() -> dict[str, Any]:
    with EmbeddedStack() as infra:
        url = infra["MONGODB_URL"]
        motor_client: AsyncIOMotorClient[Any] = AsyncIOMotorClient(url, tz_aware=True)
        pymongo_client: AsyncMongoClient[Any] = AsyncMongoClient(url, tz_aware=True)
        try:
            results: dict[str, Any] = {}
            # Alternated and repeated: the machine is shared, so each client gets two turns.
            for turn in (1, 2):
                results[f"motor_{turn}"] = await measure(motor_client, motor_client["bench_m"], motor=True)
                results[f"pymongo_async_{turn}"] = await measure(pymongo_client, pymongo_client["bench_p"], motor=False)
        finally:
            motor_client.close()
            await pymongo_client.close()
    keys = results["motor_1"].keys()
    best = {
        name: {k: max(results[f"{name}_1"][k], results[f"{name}_2"][k]) for k in keys}
        for name in ("motor", "pymongo_async")
    }
    results["ratios_pymongo_async_to_motor"] = {k: round(best["pymongo_async"][k] / best["motor"][k], 2) for k in keys}
    return results
