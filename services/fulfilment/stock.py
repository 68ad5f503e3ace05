"""The vault's side of the Redis stock counters (`shared/inventory.py`): supply = usable keys.

Supply changes are applied twice on purpose, once right after the commit (so stock shows at
once) and once by a handler of the event that commit wrote to the outbox (so a crash between the
commit and the Redis call cannot lose it). Both use the same op id; Redis applies it once.
Counters are rebuilt from MongoDB on start (when missing), on demand and periodically (keys
expire without any event).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from services.fulfilment import store
from shared.contracts.envelope import utcnow
from shared.inventory import Inventory
from shared.runtime import Runtime

log = logging.getLogger(__name__)


async def apply_supply(db: Any, inventory: Inventory, sku_id: str, delta: int, op_id: str) -> None:
    """Apply a committed supply change once. When Redis has no counter for the SKU (it lost its
    data, markers included), a delta would start a wrong counter (a disable on nothing gives -1,
    and a counter that exists is not rebuilt on start): rebuild from the vault instead, which
    already counts this change and marks it applied."""
    if not await inventory.known(sku_id):
        await rebuild(db, inventory, sku_id)
        return
    result = await inventory.adjust_supply(sku_id, delta, op_id=op_id)
    if result is None:
        log.info("supply change %s of SKU %s was already applied", op_id, sku_id)


async def apply_supply_soon(db: Any, inventory: Inventory, sku_id: str, delta: int, op_id: str) -> None:
    """The fast path after a commit; its failure is logged, the event handler will apply it."""
    try:
        await apply_supply(db, inventory, sku_id, delta, op_id)
    except Exception as exc:
        log.warning("supply change %s of SKU %s deferred to its event: %r", op_id, sku_id, exc)


async def rebuild(db: Any, inventory: Inventory, sku_id: str) -> int:
    """Set the SKU's supply from the vault and mark the changes that count includes as applied."""
    supply, applied = await store.supply_truth(db, sku_id, utcnow())
    await inventory.set_supply(sku_id, supply, applied_ops=applied)
    log.info("rebuilt supply of SKU %s: %d", sku_id, supply)
    return supply


async def rebuild_all(db: Any, inventory: Inventory, *, only_missing: bool) -> dict[str, int]:
    rebuilt: dict[str, int] = {}
    for sku_id in await store.vault_skus(db):
        if only_missing and await inventory.known(sku_id):
            continue
        rebuilt[sku_id] = await rebuild(db, inventory, sku_id)
    return rebuilt


async def on_ready(rt: Runtime) -> None:
    """Start-up hook: Redis may have restarted empty; then keep counters honest as keys expire."""
    inventory = rt.get(Inventory)
    rebuilt = await rebuild_all(rt.mongo.db, inventory, only_missing=True)
    if rebuilt:
        log.info("rebuilt missing supply counters of %d SKUs", len(rebuilt))
    interval = float(getattr(rt.settings, "stock_rebuild_interval_seconds", 3600.0))
    if interval > 0:
        rt.tasks.append(asyncio.create_task(_periodic(rt, inventory, interval), name="fulfilment-stock-rebuild"))


async def _periodic(rt: Runtime, inventory: Inventory, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await rebuild_all(rt.mongo.db, inventory, only_missing=False)
        except Exception as exc:
            log.warning("periodic stock rebuild failed, next try in %.0fs: %r", interval, exc)
