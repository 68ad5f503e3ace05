"""Every Kafka subscriber of the fulfilment service. Each runs in a transaction with the inbox
(`ctx.tx`), so a redelivered event changes nothing twice; each hands over to one use case.

A handler's function name is its inbox identity (`fulfilment.<name>`): renaming one would let
it process again events it already handled."""

from __future__ import annotations

from services.fulfilment.deps import deps_of
from services.fulfilment.usecases import delivery, stock, vault
from services.fulfilment.usecases import reissue as replacements
from shared.contracts.catalog import SkuChanged
from shared.contracts.fulfilment import FulfilmentSucceeded, KeyDisabled, KeysImported
from shared.contracts.order import CancelRequested, OrderPaid
from shared.contracts.support import ReissueRequested
from shared.messaging.consumer import EventRouter, HandlerContext

router = EventRouter("fulfilment")


@router.handles(SkuChanged)
async def project_sku(event: SkuChanged, ctx: HandlerContext) -> None:
    await vault.project_sku(ctx.tx, deps_of(ctx), event)


@router.handles(KeysImported)
async def add_imported_supply(event: KeysImported, ctx: HandlerContext) -> None:
    await stock.imported_keys_join_supply(deps_of(ctx), event)


@router.handles(KeyDisabled)
async def remove_disabled_supply(event: KeyDisabled, ctx: HandlerContext) -> None:
    await stock.disabled_key_leaves_supply(deps_of(ctx), event)


@router.handles(OrderPaid)
async def start_delivery(event: OrderPaid, ctx: HandlerContext) -> None:
    """Exactly one delivery per paid order (a duplicate `order.paid` finds it open already)."""
    await delivery.start_delivery(ctx.tx, deps_of(ctx), event)


@router.handles(CancelRequested)
async def stop_if_nothing_went_out(event: CancelRequested, ctx: HandlerContext) -> None:
    await delivery.stop_if_nothing_went_out(ctx.tx, deps_of(ctx), event)


@router.handles(FulfilmentSucceeded, when=lambda e: e.mode == "auto" and e.sku_id is not None)
async def claimed_keys_leave_supply(event: FulfilmentSucceeded, ctx: HandlerContext) -> None:
    await delivery.claimed_keys_leave_supply(ctx.tx, deps_of(ctx), event)


@router.handles(ReissueRequested)
async def reissue(event: ReissueRequested, ctx: HandlerContext) -> None:
    await replacements.reissue(ctx.tx, deps_of(ctx), event)
