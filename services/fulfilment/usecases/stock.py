"""The vault's side of the Redis stock counters (`shared/inventory.py`): supply = usable keys.

Supply changes are applied twice on purpose, once right after the commit (so stock shows at
once) and once by a handler of the event that commit wrote to the outbox (so a crash between the
commit and the Redis call cannot lose it). Both use the same op id; Redis applies it once.
Counters are rebuilt from MongoDB on start (when missing), on demand, periodically (keys
expire without any event), and whenever Redis lost its data: the epoch marker
(`shared/inventory.py`) is then gone, and `keep_supply_epoch` rebuilds every missing counter and
sets it again. Until then the order service sells nothing of a SKU whose counter is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.fulfilment import metrics
from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.domain import TaskStatus
from services.fulfilment.schemas import StockView
from services.fulfilment.store import FulfilmentStore, disable_op, import_op
from shared.contracts.fulfilment import KeyDisabled, KeysImported
from shared.inventory import EPOCH_SUPPLY, Inventory
from shared.runtime import Runtime

log = logging.getLogger(__name__)


async def apply_supply(
    store: FulfilmentStore, inventory: Inventory, sku_id: str, delta: int, op_id: str, *, hands_over: str | None = None
) -> None:
    """Apply a committed supply change once. When Redis has no counter for the SKU (it lost its
    data, markers included), a delta would start a wrong counter (a disable on nothing gives -1,
    and a counter that exists is not rebuilt on start): rebuild from the vault instead, which
    already counts this change and marks it applied."""
    if not await inventory.known(sku_id):
        await rebuild(store, inventory, sku_id, only_missing=True)
        return
    result = await inventory.adjust_supply(sku_id, delta, op_id=op_id, hands_over=hands_over)
    if result is None:
        log.info("supply change %s of SKU %s was already applied", op_id, sku_id)


async def apply_supply_soon(
    store: FulfilmentStore, inventory: Inventory, sku_id: str, delta: int, op_id: str, *, hands_over: str | None = None
) -> None:
    """The fast path after a commit; its failure is logged, the event handler will apply it."""
    try:
        await apply_supply(store, inventory, sku_id, delta, op_id, hands_over=hands_over)
    except Exception as exc:
        log.warning("supply change %s of SKU %s deferred to its event: %r", op_id, sku_id, exc)


async def rebuild(store: FulfilmentStore, inventory: Inventory, sku_id: str, *, only_missing: bool = False) -> int:
    """Set the SKU's supply from the vault and mark the changes that count includes as applied.
    With `only_missing` the counter is only created: one that exists meanwhile was built by a
    concurrent rebuild or change from a truth at least as recent as ours."""
    supply, applied = await store.supply_truth(sku_id)
    if only_missing:
        if await inventory.set_supply_if_missing(sku_id, supply, applied_ops=applied):
            log.info("rebuilt missing supply of SKU %s: %d", sku_id, supply)
        return supply
    await inventory.set_supply(sku_id, supply, applied_ops=applied)
    log.info("rebuilt supply of SKU %s: %d", sku_id, supply)
    return supply


async def rebuild_all(store: FulfilmentStore, inventory: Inventory, *, only_missing: bool) -> dict[str, int]:
    rebuilt: dict[str, int] = {}
    for sku_id in await store.vault_skus():
        if only_missing and await inventory.known(sku_id):
            continue
        rebuilt[sku_id] = await rebuild(store, inventory, sku_id, only_missing=only_missing)
    return rebuilt


async def imported_keys_join_supply(deps: FulfilmentDeps, event: KeysImported) -> None:
    """The safety net of the import's fast path: same op id, so Redis counts the batch once."""
    await apply_supply(deps.store, deps.inventory, event.sku_id, event.accepted, import_op(event.batch_id))


async def disabled_key_leaves_supply(deps: FulfilmentDeps, event: KeyDisabled) -> None:
    await apply_supply(deps.store, deps.inventory, event.sku_id, -1, disable_op(event.key_id))


async def stock_view(deps: FulfilmentDeps, sku_id: str) -> StockView:
    counts = await deps.store.vault_counts(sku_id)
    redis_stock = await deps.inventory.stock(sku_id)
    return StockView(
        sku_id=sku_id,
        available=counts["available"],
        reserved=redis_stock.held,
        sold=counts["sold"],
        disabled=counts["disabled"],
        expired=counts["expired"],
        supply=redis_stock.supply,
        sellable=redis_stock.sellable,
    )


async def rebuild_stock(deps: FulfilmentDeps, sku_id: str) -> StockView:
    await rebuild(deps.store, deps.inventory, sku_id)
    return await stock_view(deps, sku_id)


async def rebuild_missing(rt: Runtime) -> None:
    """Start-up hook (and `keep_supply_epoch`'s step): Redis may have restarted empty. The epoch
    marker is set after the rebuild, so "marker present" means every counter was built."""
    deps: FulfilmentDeps = rt.deps
    if await deps.inventory.epoch_known(EPOCH_SUPPLY):
        return
    rebuilt = await rebuild_all(deps.store, deps.inventory, only_missing=True)
    await deps.inventory.mark_epoch(EPOCH_SUPPLY)
    log.info("supply counters rebuilt from the vault (%d SKUs); epoch marked", len(rebuilt))


async def rebuild_on_start(rt: Runtime) -> None:
    """Start-up hook: whatever Redis lost while this process was away (one SKU's counters, or all
    of them) is built again from the vault, create-only, before the epoch is marked. Unlike the
    loop below it does not trust a marker that is present: a restart is the moment to look."""
    deps: FulfilmentDeps = rt.deps
    rebuilt = await rebuild_all(deps.store, deps.inventory, only_missing=True)
    await deps.inventory.mark_epoch(EPOCH_SUPPLY)
    log.info("supply counters missing at start rebuilt from the vault (%d SKUs); epoch marked", len(rebuilt))


async def keep_supply_epoch(rt: Runtime) -> None:
    """Background loop: notice within a second that Redis lost its data, and rebuild."""
    deps: FulfilmentDeps = rt.deps
    while True:
        await asyncio.sleep(deps.settings.epoch_check_seconds)
        try:
            await rebuild_missing(rt)
        except Exception as exc:
            log.warning("supply epoch check failed, next try in %.1fs: %r", deps.settings.epoch_check_seconds, exc)


async def rebuild_periodically(rt: Runtime) -> None:
    """Background loop: keys expire without any event, so counters are re-counted now and then."""
    deps: FulfilmentDeps = rt.deps
    interval = deps.settings.stock_rebuild_interval_seconds
    if interval <= 0:
        return
    while True:
        await asyncio.sleep(interval)
        try:
            await rebuild_all(deps.store, deps.inventory, only_missing=False)
        except Exception as exc:
            log.warning("periodic stock rebuild failed, next try in %.0fs: %r", interval, exc)


async def sample_signals(deps: FulfilmentDeps) -> None:
    """Set the stock-per-SKU and manual-queue gauges (`metrics.py`) from the counters and the queue;
    only SKUs on sale with automatic delivery have a stock series."""
    for sku_id in await deps.store.vault_skus():
        sku = await deps.store.get_sku(sku_id)
        if sku is None or not sku.get("on_sale", True) or sku.get("delivery_mode") != "auto":
            # Off sale or no longer sold from the vault: nothing to run out of, nothing to alert on.
            with contextlib.suppress(KeyError):
                metrics.CARD_KEY_STOCK.remove(sku_id)
            continue
        metrics.CARD_KEY_STOCK.labels(sku_id).set((await deps.inventory.stock(sku_id)).sellable)
    metrics.MANUAL_QUEUE.set(await deps.store.count_tasks(TaskStatus.PENDING))


async def sample_signals_forever(rt: Runtime) -> None:
    """Background loop: the business gauges, every `metrics.SAMPLE_SECONDS`."""
    while True:
        await sample_signals(rt.deps)
        await asyncio.sleep(metrics.SAMPLE_SECONDS)
