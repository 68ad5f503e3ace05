"""Background work of the order service: the status channel, expiring unpaid orders, and
rebuilding the Redis holds from the orders that hold stock."""

from __future__ import annotations

import asyncio
import logging

from services.order.domain import Status
from services.order.saga import OrderDeps, move
from services.order.store import ORDERS, open_holds
from shared.contracts.envelope import utcnow
from shared.messaging.outbox import Tx
from shared.runtime import Runtime

log = logging.getLogger(__name__)


async def listen_for_status(rt: Runtime) -> None:
    await rt.get(OrderDeps).watch.listen()


async def expire_unpaid(rt: Runtime) -> None:
    """Unpaid past the deadline -> EXPIRED, and the stock goes back. Safe with several replicas:
    the guarded transition lets only one of them expire an order."""
    deps = rt.get(OrderDeps)
    while True:
        try:
            await expire_once(rt, deps)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("expiry sweep failed; trying again")
        await asyncio.sleep(deps.settings.expiry_sweep_seconds)


async def expire_once(rt: Runtime, deps: OrderDeps, limit: int = 500) -> int:
    due = (
        await rt.mongo.db[ORDERS]
        .find({"status": Status.PENDING_PAYMENT.value, "expires_at": {"$lt": utcnow()}}, {"_id": 1})
        .limit(limit)
        .to_list(limit)
    )
    expired = 0
    for doc in due:

        async def run(tx: Tx, order_id: str = doc["_id"]) -> bool:
            return await move(tx, deps, order_id, Status.EXPIRED, reason="not paid in time") is not None

        expired += await rt.uow.run(run)
    if expired:
        log.info("expired %d unpaid order(s)", expired)
    return expired


async def rebuild_holds(rt: Runtime, *, only_missing: bool) -> dict[str, int]:
    """Set every SKU's Redis holds from the orders that hold stock (the truth). With
    `only_missing`, touch only SKUs whose counter Redis lost (safe while orders are being placed)."""
    deps = rt.get(OrderDeps)
    truth = await open_holds(rt.mongo.db)
    skus = set(truth) | (set() if only_missing else set(await deps.inventory.skus_with_holds()))
    rebuilt: dict[str, int] = {}
    for sku_id in sorted(skus):
        if only_missing and await deps.inventory.holds_known(sku_id):
            continue
        rebuilt[sku_id] = await deps.inventory.set_holds(sku_id, truth.get(sku_id, {}))
    if rebuilt:
        log.info("rebuilt holds of %d SKU(s)", len(rebuilt))
    return rebuilt


async def rebuild_missing_holds(rt: Runtime) -> None:
    await rebuild_holds(rt, only_missing=True)
