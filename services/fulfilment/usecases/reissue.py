"""Re-issue (补发) after a ticket: staff judged the delivered keys bad, so the buyer gets
replacements once per ticket, and the old keys are marked disputed (kept, for the supplier claim).
No replacement left in the vault → the order is refunded instead (`fulfilment.failed`)."""

from __future__ import annotations

import logging

from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.domain import DeliveryStatus, reissue_claim_id
from services.fulfilment.store import claim_op
from services.fulfilment.usecases.stock import apply_supply_soon
from shared.contracts.envelope import utcnow
from shared.contracts.fulfilment import FulfilmentFailed
from shared.contracts.support import ReissueRequested
from shared.messaging.outbox import Tx

log = logging.getLogger(__name__)


async def reissue(tx: Tx, deps: FulfilmentDeps, event: ReissueRequested) -> None:
    store = deps.store
    delivery = await store.get_delivery(event.order_id, tx=tx)
    if delivery is None or delivery["mode"] != "auto" or delivery["status"] != DeliveryStatus.SUCCEEDED:
        log.warning("re-issue for order %s ignored: no completed automatic delivery", event.order_id)
        return
    earlier = delivery.get("reissues", [])
    if any(r["ticket_id"] == event.ticket_id for r in earlier):
        return  # this ticket's replacement was made already
    claim_id = reissue_claim_id(event.order_id, event.ticket_id)
    ids = await store.claim_keys(tx, event.sku_id, claim_id, event.quantity, user_id=event.user_id)
    if len(ids) < event.quantity:
        await store.release_keys(tx, ids, claim_id)
        tx.emit(
            FulfilmentFailed(
                order_id=event.order_id,
                user_id=event.user_id,
                mode="auto",
                reason=f"re-issue impossible: only {len(ids)} replacement key(s) left",
            )
        )
        return
    await store.mark_disputed(tx, [event.order_id, *[r["claim_id"] for r in earlier]], event.ticket_id)
    await store.add_reissue(
        tx, event.order_id, {"ticket_id": event.ticket_id, "claim_id": claim_id, "key_ids": ids, "at": utcnow()}
    )

    async def take_out_of_supply() -> None:
        await apply_supply_soon(store, deps.inventory, event.sku_id, -len(ids), claim_op(claim_id))

    tx.after_commit(take_out_of_supply)
