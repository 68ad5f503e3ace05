"""Background work of the order service: the status channel, expiring unpaid orders, and
rebuilding the Redis holds from the orders that hold stock. The loops run only through the
factory's supervised `background=` (restarted with backoff, shown in /health/ready)."""

from __future__ import annotations

import asyncio
import logging

from services.order.deps import OrderDeps
from services.order.domain import Status
from services.order.usecases.saga import move
from shared.contracts.envelope import utcnow
from shared.inventory import EPOCH_HELD
from shared.messaging.outbox import Tx
from shared.runtime import Runtime

log = logging.getLogger(__name__)

EXPIRY_BATCH = 500


async def listen_for_status(rt: Runtime) -> None:
    deps: OrderDeps = rt.deps
    await deps.watch.listen()


async def expire_unpaid(rt: Runtime) -> None:
    """Sweep for unpaid orders past their deadline, forever. A failed sweep is logged and tried
    again at the next tick rather than restarting the loop with a growing backoff."""
    deps: OrderDeps = rt.deps
    while True:
        try:
            await expire_once(deps)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("expiry sweep failed; trying again")
        await asyncio.sleep(deps.settings.expiry_sweep_seconds)


async def expire_once(deps: OrderDeps, limit: int = EXPIRY_BATCH) -> int:
    """Unpaid past the deadline -> EXPIRED, and the stock goes back. Safe with several replicas:
    the guarded transition lets only one of them expire an order."""
    expired = 0
    for order_id in await deps.store.due_unpaid(utcnow(), limit):

        async def run(tx: Tx, order_id: str = order_id) -> bool:
            return await move(tx, deps, order_id, Status.EXPIRED, reason="not paid in time") is not None

        expired += await deps.uow.run(run)
    if expired:
        log.info("expired %d unpaid order(s)", expired)
    return expired


async def rebuild_holds(deps: OrderDeps, *, only_missing: bool) -> dict[str, int]:
    """Set every SKU's Redis holds from the orders that hold stock (the truth). With
    `only_missing`, only create the counters Redis lost (safe while orders are being placed: a
    counter that exists is never overwritten, see `shared/inventory.py`)."""
    truth = await deps.store.open_holds()
    skus = set(truth) | (set() if only_missing else set(await deps.inventory.skus_with_holds()))
    rebuilt: dict[str, int] = {}
    for sku_id in sorted(skus):
        holds = truth.get(sku_id, {})
        if only_missing:
            if await deps.inventory.set_holds_if_missing(sku_id, holds):
                rebuilt[sku_id] = sum(holds.values())
            continue
        rebuilt[sku_id] = await deps.inventory.set_holds(sku_id, holds)
    if rebuilt:
        log.info("rebuilt holds of %d SKU(s)", len(rebuilt))
    return rebuilt


async def rebuild_sku_holds(deps: OrderDeps, sku_id: str) -> None:
    """The held counter of one SKU is missing while the epoch stands: a SKU this Redis has not
    seen held yet (or one evicted). Built from its open orders, only if still missing."""
    truth = await deps.store.open_holds(sku_id)
    await deps.inventory.set_holds_if_missing(sku_id, truth.get(sku_id, {}))


async def rebuild_missing_holds(rt: Runtime) -> None:
    """On start, and whenever the epoch marker is gone (Redis restarted empty, failed over, was
    flushed): wait out the placements whose hold went to the lost Redis, rebuild every missing
    counter from the open orders, then mark the epoch. Until then holds are refused with 503."""
    deps: OrderDeps = rt.deps
    if await deps.inventory.epoch_known(EPOCH_HELD):
        return
    log.warning("held counters untrusted (Redis lost its data?); rebuilding from the orders")
    await asyncio.sleep(deps.settings.hold_rebuild_grace_seconds)
    await rebuild_holds(deps, only_missing=True)
    await deps.inventory.mark_epoch(EPOCH_HELD)
    log.info("held counters rebuilt from the orders; epoch marked")


async def keep_held_epoch(rt: Runtime) -> None:
    """Background loop: notice within a second that Redis lost its data, and rebuild."""
    deps: OrderDeps = rt.deps
    while True:
        await asyncio.sleep(deps.settings.epoch_check_seconds)
        try:
            await rebuild_missing_holds(rt)
        except Exception as exc:
            log.warning("held epoch check failed, next try in %.1fs: %r", deps.settings.epoch_check_seconds, exc)
