"""Re-issue (补发) after a ticket: staff judged the delivered keys bad, so the buyer gets
replacements once per ticket, and the old keys are marked disputed (kept, for the supplier claim).
No replacement left in the vault → the order is refunded instead (`fulfilment.failed`)."""

from __future__ import annotations

import logging

from services.fulfilment.deliveries import DELIVERIES
from services.fulfilment.stock import apply_supply_soon
from services.fulfilment.store import CARD_KEYS, claim_keys, claim_op
from shared.contracts.envelope import utcnow
from shared.contracts.fulfilment import FulfilmentFailed
from shared.contracts.support import ReissueRequested
from shared.inventory import Inventory
from shared.messaging.consumer import EventRouter, HandlerContext

log = logging.getLogger(__name__)
router = EventRouter("fulfilment")


def reissue_claim_id(order_id: str, ticket_id: str) -> str:
    """Replacement keys are claimed under their own id, so the order's first claim stays as it was."""
    return f"{order_id}.reissue.{ticket_id}"


@router.handles(ReissueRequested)
async def reissue(event: ReissueRequested, ctx: HandlerContext) -> None:
    assert ctx.runtime is not None
    db, session = ctx.tx.db, ctx.tx.session
    delivery = await db[DELIVERIES].find_one({"_id": event.order_id}, session=session)
    if delivery is None or delivery["mode"] != "auto" or delivery["status"] != "succeeded":
        log.warning("re-issue for order %s ignored: no completed automatic delivery", event.order_id)
        return
    if any(r["ticket_id"] == event.ticket_id for r in delivery.get("reissues", [])):
        return  # this ticket's replacement was made already
    claim_id = reissue_claim_id(event.order_id, event.ticket_id)
    ids = await claim_keys(ctx.tx, event.sku_id, claim_id, event.quantity, user_id=event.user_id)
    if len(ids) < event.quantity:
        if ids:
            await db[CARD_KEYS].update_many(
                {"_id": {"$in": ids}, "order_id": claim_id},
                {"$set": {"status": "available"}, "$unset": {"order_id": "", "sold_at": "", "user_id": ""}},
                session=session,
            )
        ctx.tx.emit(
            FulfilmentFailed(
                order_id=event.order_id,
                user_id=event.user_id,
                mode="auto",
                reason=f"re-issue impossible: only {len(ids)} replacement key(s) left",
            )
        )
        return
    await db[CARD_KEYS].update_many(
        {
            "order_id": {"$in": [event.order_id, *[r["claim_id"] for r in delivery.get("reissues", [])]]},
            "disputed": {"$ne": True},
        },
        {"$set": {"disputed": True, "disputed_by_ticket": event.ticket_id}},
        session=session,
    )
    await db[DELIVERIES].update_one(
        {"_id": event.order_id},
        {"$push": {"reissues": {"ticket_id": event.ticket_id, "claim_id": claim_id, "key_ids": ids, "at": utcnow()}}},
        session=session,
    )
    inventory = ctx.runtime.get(Inventory)

    async def take_out_of_supply() -> None:
        await apply_supply_soon(db, inventory, event.sku_id, -len(ids), claim_op(claim_id))

    ctx.tx.after_commit(take_out_of_supply)
