"""Automatic delivery (自动发货): hand a paid order its card keys from the vault, all or nothing.

Runs inside the `order.paid` handler's transaction, so the claim, the delivery record and the
`fulfilment.succeeded` event commit together; a crash before the commit claims nothing (the
redelivered event starts over), a crash after it is a redelivery the inbox ignores.
"""

from __future__ import annotations

from services.fulfilment.deliveries import DELIVERIES, finish
from services.fulfilment.stock import apply_supply, apply_supply_soon
from services.fulfilment.store import CARD_KEYS, claim_keys, claim_op
from shared.contracts.fulfilment import FulfilmentSucceeded
from shared.contracts.order import OrderPaid
from shared.faults import fail_point
from shared.inventory import Inventory
from shared.messaging.consumer import EventRouter, HandlerContext
from shared.messaging.outbox import Tx

router = EventRouter("fulfilment")


async def deliver_auto(tx: Tx, paid: OrderPaid, inventory: Inventory) -> None:
    ids = await claim_keys(tx, paid.sku_id, paid.order_id, paid.quantity, user_id=paid.user_id)
    fail_point("fulfilment.after-claim")
    if len(ids) < paid.quantity:
        # Short despite the order's hold (keys disabled or expired meanwhile): put back what was
        # taken and fail the delivery, so the order is refunded; never a partial, silent delivery.
        if ids:
            await tx.db[CARD_KEYS].update_many(
                {"_id": {"$in": ids}, "order_id": paid.order_id},
                {"$set": {"status": "available"}, "$unset": {"order_id": "", "sold_at": "", "user_id": ""}},
                session=tx.session,
            )
        await finish(tx, paid.order_id, succeeded=False, reason=f"only {len(ids)} of {paid.quantity} card keys left")
        return
    await finish(tx, paid.order_id, succeeded=True, fields={"key_ids": ids, "sku_id": paid.sku_id})

    async def take_out_of_supply() -> None:
        await apply_supply_soon(tx.db, inventory, paid.sku_id, -len(ids), claim_op(paid.order_id))

    tx.after_commit(take_out_of_supply)


@router.handles(FulfilmentSucceeded, when=lambda e: e.mode == "auto" and e.sku_id is not None)
async def claimed_keys_leave_supply(event: FulfilmentSucceeded, ctx: HandlerContext) -> None:
    """The safety net of the after-commit fast path (same op id: Redis counts the claim once)."""
    assert ctx.runtime is not None and event.sku_id is not None
    delivery = await ctx.tx.db[DELIVERIES].find_one({"_id": event.order_id}, {"key_ids": 1}, session=ctx.tx.session)
    claimed = len(delivery.get("key_ids", [])) if delivery else event.quantity
    await apply_supply(ctx.tx.db, ctx.runtime.get(Inventory), event.sku_id, -claimed, claim_op(event.order_id))
