"""Deliveries: exactly one per paid order, whatever is redelivered or retried.

The delivery document's `_id` is the order id, so a second `order.paid` (a duplicate, a replay)
cannot start a second delivery; every later step is a guarded status change on that document
(`domain.DELIVERY`):

    pending --(direct: sent to the supplier)--> submitted --> succeeded | failed (or back to pending to retry)
    pending --(auto: keys claimed; manual: staff)--> succeeded | failed
    pending --(buyer cancelled before anything was sent)--> failed

Automatic delivery (自动发货) runs inside the `order.paid` handler's transaction, so the claim, the
delivery record and the `fulfilment.succeeded` event commit together; a crash before the commit
claims nothing (the redelivered event starts over), a crash after it is a redelivery the inbox
ignores.
"""

from __future__ import annotations

from typing import Any

from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.domain import MANUAL_ESTIMATE_MINUTES, DeliveryStatus
from services.fulfilment.store import FulfilmentStore, claim_op
from services.fulfilment.usecases import manual
from services.fulfilment.usecases.stock import apply_supply, apply_supply_soon
from shared.contracts.envelope import utcnow
from shared.contracts.fulfilment import FulfilmentFailed, FulfilmentStarted, FulfilmentSucceeded
from shared.contracts.order import CancelRequested, OrderPaid
from shared.faults import fail_point
from shared.messaging.outbox import Tx


async def start_delivery(tx: Tx, deps: FulfilmentDeps, paid: OrderPaid) -> None:
    now = utcnow()
    opening: dict[str, Any] = {
        "_id": paid.order_id,
        "user_id": paid.user_id,
        "sku_id": paid.sku_id,
        "quantity": paid.quantity,
        "mode": paid.delivery_mode,
        "recipient": paid.recipient,
        "partner_key_id": paid.partner_key_id,
        "face_value_cents": paid.face_value_cents,
        "validity_days": paid.validity_days,
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    if paid.delivery_mode not in ("direct", "manual"):
        # Auto: the keys are claimed in this same transaction, so the delivery is written once,
        # already closed, instead of opened and then closed (one write fewer per order).
        if await deps.store.get_delivery(paid.order_id, tx=tx) is None:
            await deliver_auto(tx, deps, paid, opening)
        return
    if not await deps.store.open_delivery(tx, opening):
        return  # this order already has its delivery
    if paid.delivery_mode == "direct":
        tx.emit(
            FulfilmentStarted(
                order_id=paid.order_id,
                user_id=paid.user_id,
                mode="direct",
                estimated_minutes=deps.settings.direct_estimated_minutes,
            )
        )

        async def wake() -> None:
            deps.wake.set()

        tx.after_commit(wake)
    elif paid.delivery_mode == "manual":
        await manual.open_task(tx, deps, paid)
        tx.emit(
            FulfilmentStarted(
                order_id=paid.order_id, user_id=paid.user_id, mode="manual", estimated_minutes=MANUAL_ESTIMATE_MINUTES
            )
        )


async def deliver_auto(tx: Tx, deps: FulfilmentDeps, paid: OrderPaid, opening: dict[str, Any]) -> None:
    """Hand a paid order its card keys from the vault, all or nothing; `opening` is the new
    delivery, written once with its outcome."""
    sku = await deps.store.get_sku(paid.sku_id)
    if sku is not None and sku.get("key_mode") == "reusable":
        await deliver_reusable(tx, deps, paid, opening)
        return
    ids = await deps.store.claim_keys(tx, paid.sku_id, paid.order_id, paid.quantity, user_id=paid.user_id)
    fail_point("fulfilment.after-claim")
    if len(ids) < paid.quantity:
        # Short despite the order's hold (keys disabled or expired meanwhile): put back what was
        # taken and fail the delivery, so the order is refunded; never a partial, silent delivery.
        await deps.store.release_keys(tx, ids, paid.order_id)
        await finish(
            tx,
            deps.store,
            paid.order_id,
            succeeded=False,
            reason=f"only {len(ids)} of {paid.quantity} card keys left",
            opening=opening,
        )
        return
    fields = {"key_ids": ids, "sku_id": paid.sku_id}
    if await finish(tx, deps.store, paid.order_id, succeeded=True, fields=fields, opening=opening) is None:
        return  # another delivery of this order was written meanwhile: it owns these keys

    async def take_out_of_supply() -> None:
        await apply_supply_soon(
            deps.store, deps.inventory, paid.sku_id, -len(ids), claim_op(paid.order_id), hands_over=paid.order_id
        )

    tx.after_commit(take_out_of_supply)


async def deliver_reusable(tx: Tx, deps: FulfilmentDeps, paid: OrderPaid, opening: dict[str, Any]) -> None:
    """循环卡密: every buyer gets the SKU's current reusable key (the newest usable one), which
    stays available; nothing leaves supply. No usable key at all fails the delivery (refund)."""
    key = await deps.store.reusable_key(tx, paid.sku_id, utcnow())
    if key is None:
        await finish(
            tx, deps.store, paid.order_id, succeeded=False, reason="no reusable key in the vault", opening=opening
        )
        return
    key_id, expires_at = key
    fields: dict[str, Any] = {"reusable_key_id": key_id, "sku_id": paid.sku_id}
    if expires_at is not None:
        fields["key_expires_at"] = expires_at  # for the expiry reminder (the key itself stays available)
    await finish(tx, deps.store, paid.order_id, succeeded=True, fields=fields, opening=opening)


async def finish(
    tx: Tx,
    store: FulfilmentStore,
    order_id: str,
    *,
    succeeded: bool,
    reason: str | None = None,
    only_from: DeliveryStatus | None = None,
    fields: dict[str, Any] | None = None,
    opening: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Close a delivery (guarded by `domain.DELIVERY`, narrowed to `only_from`) and tell the order
    service; None when the table refuses it (already closed: a late callback, a repeated click).
    With `opening` the delivery is new: it is inserted already closed (None if the order has one)."""
    now = utcnow()
    target = DeliveryStatus.SUCCEEDED if succeeded else DeliveryStatus.FAILED
    update: dict[str, Any] = {"updated_at": now, **(fields or {})}
    if succeeded:
        update["delivered_at"] = now
    else:
        update["reason"] = reason
    doc: dict[str, Any] | None
    if opening is not None:
        doc = {**opening, "status": target.value, **update}
        if not await store.open_delivery(tx, doc):
            return None
    else:
        doc = await store.move_delivery(tx, order_id, target, only_from=only_from, set_=update)
    if doc is None:
        return None
    if succeeded:
        tx.emit(
            FulfilmentSucceeded(
                order_id=order_id,
                user_id=doc["user_id"],
                delivery_id=order_id,
                quantity=doc["quantity"],
                mode=doc["mode"],
                delivered_at=now,
                sku_id=doc.get("sku_id"),
            )
        )
    else:
        tx.emit(
            FulfilmentFailed(order_id=order_id, user_id=doc["user_id"], reason=reason or "failed", mode=doc["mode"])
        )
    return doc


async def stop_if_nothing_went_out(tx: Tx, deps: FulfilmentDeps, cancel: CancelRequested) -> None:
    """Only a delivery nothing has been sent for can stop: a manual task still waiting, or a
    direct top-up not yet sent to the supplier. Otherwise the delivery goes on (and the order ends
    delivered, or refunded by its own failure)."""
    delivery = await deps.store.get_delivery(cancel.order_id, tx=tx)
    if delivery is None or delivery["status"] != DeliveryStatus.PENDING or delivery.get("request_id"):
        return
    if delivery["mode"] == "manual":
        if not await manual.cancel_task(tx, deps, cancel.order_id):
            return
    elif delivery["mode"] != "direct":
        return
    await finish(
        tx,
        deps.store,
        cancel.order_id,
        succeeded=False,
        only_from=DeliveryStatus.PENDING,
        reason="cancelled by the buyer",
    )


async def claimed_keys_leave_supply(tx: Tx, deps: FulfilmentDeps, event: FulfilmentSucceeded) -> None:
    """The safety net of the after-commit fast path (same op id: Redis counts the claim once)."""
    assert event.sku_id is not None
    delivery = await deps.store.get_delivery(event.order_id, tx=tx)
    claimed = len(delivery.get("key_ids", [])) if delivery else event.quantity
    await apply_supply(
        deps.store, deps.inventory, event.sku_id, -claimed, claim_op(event.order_id), hands_over=event.order_id
    )
