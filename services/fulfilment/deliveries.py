"""Deliveries: exactly one per paid order, whatever is redelivered or retried.

The delivery document's `_id` is the order id, so a second `order.paid` (a duplicate, a replay)
cannot start a second delivery; every later step is a guarded status change on that document:

    pending --(direct: sent to the supplier)--> submitted --> succeeded | failed
    pending --(manual: staff)--> succeeded | failed
    pending --(buyer cancelled before anything was sent)--> cancelled
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.contracts.envelope import utcnow
from shared.contracts.fulfilment import FulfilmentFailed, FulfilmentSucceeded
from shared.contracts.order import OrderPaid
from shared.messaging.outbox import Tx
from shared.mongo import Index

DELIVERIES = "deliveries"
MANUAL_TASKS = "manual_tasks"

DELIVERY_INDEXES = [
    Index(DELIVERIES, [("mode", 1), ("status", 1), ("next_attempt_at", 1)]),
    Index(DELIVERIES, [("mode", 1), ("status", 1), ("poll_at", 1)]),
    Index(DELIVERIES, [("request_id", 1)], {"sparse": True}),
    Index(MANUAL_TASKS, [("status", 1), ("urged", -1), ("created_at", 1)]),
]

OPEN = ("pending", "submitted")


async def open_delivery(tx: Tx, paid: OrderPaid) -> dict[str, Any] | None:
    """The new delivery for a paid order, or None when the order already has one."""
    now = utcnow()
    doc = {
        "_id": paid.order_id,
        "user_id": paid.user_id,
        "sku_id": paid.sku_id,
        "quantity": paid.quantity,
        "mode": paid.delivery_mode,
        "recipient": paid.recipient,
        "partner_key_id": paid.partner_key_id,
        "face_value_cents": paid.face_value_cents,
        "validity_days": paid.validity_days,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    try:
        await tx.db[DELIVERIES].insert_one(doc, session=tx.session)
    except DuplicateKeyError:
        return None
    return doc


async def finish(
    tx: Tx,
    order_id: str,
    *,
    succeeded: bool,
    reason: str | None = None,
    expect: tuple[str, ...] = OPEN,
    fields: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Close a delivery (guarded: only from `expect`) and tell the order service; None if it was
    not in one of those states (already closed: a late callback, a repeated staff click)."""
    now = utcnow()
    status = "succeeded" if succeeded else "failed"
    update: dict[str, Any] = {"status": status, "updated_at": now, **(fields or {})}
    if succeeded:
        update["delivered_at"] = now
    else:
        update["reason"] = reason
    doc: dict[str, Any] | None = await tx.db[DELIVERIES].find_one_and_update(
        {"_id": order_id, "status": {"$in": list(expect)}},
        {"$set": update},
        session=tx.session,
        return_document=ReturnDocument.AFTER,
    )
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


def recipient_account(recipient: dict[str, str]) -> str:
    """The account a direct top-up goes to: the mobile number or game account the buyer entered."""
    for name in ("mobile", "phone", "account", "game_id"):
        if recipient.get(name):
            return recipient[name]
    return next(iter(recipient.values()), "")
