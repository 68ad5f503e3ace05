"""Coupons in the wallet: definitions, per-user grants, and holds per order.

A grant (`<code>:<user>`) counts `available`, `held` and `used`; every change is a guarded `$inc`
so a coupon is never held or used more often than it was granted. The hold for an order
(`coupon_holds`, by order id) moves held -> consumed (with the payment, same transaction) or
held -> released (order cancelled or expired); a hold the rules refuse is stored as `rejected`, so
the payment is declined with `coupon-unavailable`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument, UpdateOne

from services.wallet.domain import coupon_problem, discount_cents, grantable
from services.wallet.store import ACCOUNTS, COUPONS, GRANTS, HOLDS, coupon_from
from shared.contracts.envelope import utcnow
from shared.contracts.order import OrderPlaced
from shared.contracts.wallet import CouponDefined, CouponGranted
from shared.messaging.outbox import Tx

log = logging.getLogger(__name__)


def grant_id(code: str, user_id: str) -> str:
    return f"{code}:{user_id}"


def defined_event(doc: dict[str, Any]) -> CouponDefined:
    return CouponDefined(
        code=doc["_id"],
        revision=doc["revision"],
        kind=doc["kind"],
        amount_off_cents=doc.get("amount_off_cents", 0),
        percent_off_bp=doc.get("percent_off_bp", 0),
        max_discount_cents=doc.get("max_discount_cents"),
        min_spend_cents=doc.get("min_spend_cents", 0),
        sku_ids=list(doc.get("sku_ids", [])),
        category_ids=list(doc.get("category_ids", [])),
        starts_at=doc.get("starts_at"),
        expires_at=doc["expires_at"],
        per_user_limit=doc.get("per_user_limit", 1),
        first_order_only=doc.get("first_order_only", False),
        active=doc.get("active", True),
        description=doc.get("description", ""),
    )


async def grant(tx: Tx, coupon: dict[str, Any], user_ids: list[str], quantity: int) -> list[tuple[str, int]]:
    """Grant up to `quantity` to each user, never past the per-user limit: [(user, granted)]."""
    code, limit = coupon["_id"], coupon.get("per_user_limit", 1)
    ids = [grant_id(code, u) for u in user_ids]
    existing = {g["user_id"]: g["total"] async for g in tx.db[GRANTS].find({"_id": {"$in": ids}}, session=tx.session)}
    ops, result = [], []
    for user_id in user_ids:
        already = existing.get(user_id, 0)
        n = grantable(already, quantity, limit)
        result.append((user_id, n))
        if n == 0:
            continue
        # The total is part of the filter: a concurrent grant makes this match nothing (upsert then
        # fails on the unique _id and the transaction retries with fresh numbers).
        ops.append(
            UpdateOne(
                {"_id": grant_id(code, user_id), "total": already} if already else {"_id": grant_id(code, user_id)},
                {
                    "$inc": {"total": n, "available": n},
                    "$setOnInsert": {"code": code, "user_id": user_id, "held": 0, "used": 0},
                },
                upsert=True,
            )
        )
        tx.emit(CouponGranted(user_id=user_id, code=code, quantity=n, total_granted=already + n))
    if ops:
        await tx.db[GRANTS].bulk_write(ops, ordered=False, session=tx.session)
    return result


async def grant_on_signup(tx: Tx, user_id: str, now: datetime) -> None:
    """New users get one of every active coupon marked `grant_on_signup` (e.g. 首单立减)."""
    cursor = tx.db[COUPONS].find(
        {"grant_on_signup": True, "active": True, "expires_at": {"$gt": now}}, session=tx.session
    )
    async for coupon in cursor:
        await grant(tx, coupon, [user_id], 1)


async def hold(tx: Tx, placed: OrderPlaced) -> None:
    """Hold the order's coupon (order.placed); a refused hold is recorded as `rejected`."""
    if not placed.coupon_code:
        return
    db, s = tx.db, tx.session
    if await db[HOLDS].find_one({"_id": placed.order_id}, {"_id": 1}, session=s):
        return  # the same order placed twice (a duplicate event): held once
    code, now = placed.coupon_code, utcnow()
    reason = await _hold_problem(tx, placed, now)
    if reason is None:
        taken = await db[GRANTS].update_one(
            {"_id": grant_id(code, placed.user_id), "available": {"$gte": 1}},
            {"$inc": {"available": -1, "held": 1}},
            session=s,
        )
        if taken.modified_count == 0:
            reason = "not-granted-or-used-up"
    await db[HOLDS].insert_one(
        {
            "_id": placed.order_id,
            "code": code,
            "user_id": placed.user_id,
            "status": "held" if reason is None else "rejected",
            "reason": reason,
            "discount_cents": placed.discount_cents,
            "at": now,
        },
        session=s,
    )
    if reason:
        log.info("coupon %s not held for order %s: %s", code, placed.order_id, reason)


async def _hold_problem(tx: Tx, placed: OrderPlaced, now: datetime) -> str | None:
    doc = await tx.db[COUPONS].find_one({"_id": placed.coupon_code}, session=tx.session)
    if doc is None:
        return "unknown-coupon"
    coupon = coupon_from(doc)
    account = await tx.db[ACCOUNTS].find_one({"_id": placed.user_id}, {"paid_orders": 1}, session=tx.session)
    subtotal = placed.unit_price_cents * placed.quantity
    problem = coupon_problem(
        coupon,
        sku_id=placed.sku_id,
        category_id=placed.category_id,
        subtotal_cents=subtotal,
        now=now,
        paid_orders=account.get("paid_orders", 0) if account else 0,
    )
    if problem is None and placed.discount_cents > discount_cents(coupon, subtotal):
        problem = "discount-exceeds-coupon"  # the order priced it from a stale projection
    return problem


async def usable_hold(tx: Tx, *, order_id: str, user_id: str, code: str) -> dict[str, Any] | None:
    """The order's hold when the payment may consume it."""
    doc: dict[str, Any] | None = await tx.db[HOLDS].find_one(
        {"_id": order_id, "status": "held", "code": code, "user_id": user_id}, session=tx.session
    )
    return doc


async def consume(tx: Tx, *, order_id: str, user_id: str, code: str) -> None:
    """In the payment's transaction: held -> consumed, the grant's held -> used."""
    moved = await tx.db[HOLDS].update_one(
        {"_id": order_id, "status": "held"},
        {"$set": {"status": "consumed", "consumed_at": utcnow()}},
        session=tx.session,
    )
    if moved.modified_count != 1:
        raise RuntimeError(f"hold of order {order_id} changed under the payment")
    await tx.db[GRANTS].update_one(
        {"_id": grant_id(code, user_id), "held": {"$gte": 1}}, {"$inc": {"held": -1, "used": 1}}, session=tx.session
    )


async def release(tx: Tx, order_id: str, why: str) -> bool:
    """Order cancelled or expired: a held coupon goes back to the user's available ones."""
    hold_doc = await tx.db[HOLDS].find_one_and_update(
        {"_id": order_id, "status": "held"},
        {"$set": {"status": "released", "released_at": utcnow(), "released_because": why}},
        return_document=ReturnDocument.AFTER,
        session=tx.session,
    )
    if hold_doc is None:
        return False
    await tx.db[GRANTS].update_one(
        {"_id": grant_id(hold_doc["code"], hold_doc["user_id"]), "held": {"$gte": 1}},
        {"$inc": {"held": -1, "available": 1}},
        session=tx.session,
    )
    return True
