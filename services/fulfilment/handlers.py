"""The fulfilment service's Kafka event handlers (each runs in a transaction with the inbox)."""

from __future__ import annotations

from typing import Any

import msgspec

from services.fulfilment import store
from services.fulfilment.stock import apply_supply
from shared.contracts.catalog import SkuChanged
from shared.contracts.fulfilment import KeyDisabled, KeysImported
from shared.inventory import Inventory
from shared.messaging.consumer import EventRouter, HandlerContext

router = EventRouter("fulfilment")


def inventory(ctx: HandlerContext) -> Inventory:
    assert ctx.runtime is not None, "fulfilment handlers run inside the fulfilment service"
    return ctx.runtime.get(Inventory)


@router.handles(SkuChanged)
async def project_sku(event: SkuChanged, ctx: HandlerContext) -> None:
    """What the vault needs of a SKU: validity (expiry of imported keys) and delivery mode."""
    doc: dict[str, Any] = {
        "_id": event.sku_id,
        "revision": event.revision,
        "name": event.name,
        "product_name": event.product_name,
        "delivery_mode": event.delivery_mode,
        "validity_days": event.validity_days,
        "on_sale": event.on_sale,
        "recipient_fields": msgspec.to_builtins(event.recipient_fields),
    }
    await store.project_sku(ctx.tx.db, ctx.tx.session, doc)


@router.handles(KeysImported)
async def add_imported_supply(event: KeysImported, ctx: HandlerContext) -> None:
    """The safety net of the import's fast path: same op id, so Redis counts the batch once."""
    await apply_supply(ctx.tx.db, inventory(ctx), event.sku_id, event.accepted, store.import_op(event.batch_id))


@router.handles(KeyDisabled)
async def remove_disabled_supply(event: KeyDisabled, ctx: HandlerContext) -> None:
    await apply_supply(ctx.tx.db, inventory(ctx), event.sku_id, -1, store.disable_op(event.key_id))
