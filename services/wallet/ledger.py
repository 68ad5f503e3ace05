"""Money movements: each one is a few writes in the caller's transaction.

A movement is one guarded update of the user's account (the filter refuses an overdraft, so the
balance cannot go negative however many debits race) and one insert_many of its ledger entries,
which sum to zero (double entry) and carry unique idempotency keys (`<kind>:<ref>:<side>`): a
movement applied twice fails on the unique index and aborts, it is never booked twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from services.wallet import coupons
from services.wallet.domain import points_for_topup
from services.wallet.store import (
    ACCOUNTS,
    COUPONS,
    DECLINES,
    LEDGER,
    PLATFORM_POINTS,
    PLATFORM_REFUNDS,
    PLATFORM_REVENUE,
    TOPUPS,
    platform_cash,
)
from shared.contracts.envelope import new_id, utcnow
from shared.contracts.order import PaymentRequested, RefundRequested
from shared.contracts.wallet import (
    AccountOpened,
    PaymentCaptured,
    PaymentDeclined,
    RefundCompleted,
    TopupSucceeded,
)
from shared.messaging.consumer import RejectEvent
from shared.messaging.outbox import Tx

log = logging.getLogger(__name__)

INSUFFICIENT = "insufficient-balance"
NO_ACCOUNT = "no-account"
COUPON_UNAVAILABLE = "coupon-unavailable"


def payment_key(order_id: str) -> str:
    return f"payment:{order_id}:user"


def refund_key(order_id: str) -> str:
    return f"refund:{order_id}:user"


def _entry(key: str, account: str, amount_cents: int, *, at: datetime, txn: str, **fields: Any) -> dict[str, Any]:
    return {
        "_id": new_id(),
        "key": key,
        "txn": txn,
        "account": account,
        "amount_cents": amount_cents,
        "at": at,
        **fields,
    }


async def open_account(tx: Tx, user_id: str) -> bool:
    """Open `user_id`'s account once; False when it exists already."""
    result = await tx.db[ACCOUNTS].update_one(
        {"_id": user_id},
        {"$setOnInsert": {"balance_cents": 0, "points": 0, "paid_orders": 0, "opened_at": utcnow()}},
        upsert=True,
        session=tx.session,
    )
    if result.upserted_id is None:
        return False
    tx.emit(AccountOpened(user_id=user_id))
    return True


async def capture_payment(tx: Tx, p: PaymentRequested) -> None:
    """Debit an order once (ledger key = order id) and answer captured or declined."""
    db, s = tx.db, tx.session
    if p.amount_cents < 0:
        # Zero is allowed: an order fully paid by a coupon still consumes the coupon here.
        raise RejectEvent(f"payment for order {p.order_id} must not be negative, got {p.amount_cents}")
    done = await db[LEDGER].find_one({"key": payment_key(p.order_id)}, {"_id": 1}, session=s)
    declined = None if done else await db[DECLINES].find_one({"_id": p.order_id}, {"_id": 1}, session=s)
    if done or declined:
        log.info("payment for order %s was already %s; nothing to do", p.order_id, "captured" if done else "declined")
        return

    first_order_only = False
    if p.coupon_code:
        hold = await coupons.usable_hold(tx, order_id=p.order_id, user_id=p.user_id, code=p.coupon_code)
        if hold is None:
            await _decline(tx, p, COUPON_UNAVAILABLE)
            return
        coupon = await db[COUPONS].find_one({"_id": p.coupon_code}, {"first_order_only": 1}, session=s)
        first_order_only = bool(coupon and coupon.get("first_order_only"))

    guard: dict[str, Any] = {"_id": p.user_id, "balance_cents": {"$gte": p.amount_cents}}
    if first_order_only:
        guard["paid_orders"] = 0  # two first orders racing: only one gets the first-order coupon
    account = await db[ACCOUNTS].find_one_and_update(
        guard,
        {"$inc": {"balance_cents": -p.amount_cents, "paid_orders": 1}},
        return_document=ReturnDocument.AFTER,
        session=s,
    )
    if account is None:
        current = await db[ACCOUNTS].find_one({"_id": p.user_id}, session=s)
        if current is None:
            reason = NO_ACCOUNT
        elif first_order_only and current.get("paid_orders", 0) > 0:
            reason = COUPON_UNAVAILABLE
        else:
            reason = INSUFFICIENT
        await _decline(tx, p, reason, None if current is None else current["balance_cents"])
        return

    if p.coupon_code:
        await coupons.consume(tx, order_id=p.order_id, user_id=p.user_id, code=p.coupon_code)
    at, txn = utcnow(), new_id()
    user_entry = _entry(
        payment_key(p.order_id),
        p.user_id,
        -p.amount_cents,
        at=at,
        txn=txn,
        kind="payment",
        ref=p.order_id,
        category_id=p.category_id,
        sku_id=p.sku_id,
        description=p.description,
        coupon_code=p.coupon_code,
        balance_after_cents=account["balance_cents"],
    )
    await db[LEDGER].insert_many(
        [
            user_entry,
            _entry(
                f"payment:{p.order_id}:platform",
                PLATFORM_REVENUE,
                p.amount_cents,
                at=at,
                txn=txn,
                kind="payment",
                ref=p.order_id,
            ),
        ],
        session=s,
    )
    tx.emit(
        PaymentCaptured(order_id=p.order_id, user_id=p.user_id, amount_cents=p.amount_cents, entry_id=user_entry["_id"])
    )


async def _decline(tx: Tx, p: PaymentRequested, reason: str, balance_cents: int | None = None) -> None:
    await tx.db[DECLINES].insert_one(
        {"_id": p.order_id, "user_id": p.user_id, "reason": reason, "amount_cents": p.amount_cents, "at": utcnow()},
        session=tx.session,
    )
    log.info("payment for order %s declined: %s", p.order_id, reason)
    tx.emit(PaymentDeclined(order_id=p.order_id, user_id=p.user_id, reason=reason, balance_cents=balance_cents))


async def refund_payment(tx: Tx, r: RefundRequested) -> None:
    """Give an order's money back once (ledger key = order id), never more than was captured."""
    db, s = tx.db, tx.session
    if await db[LEDGER].find_one({"key": refund_key(r.order_id)}, {"_id": 1}, session=s):
        log.info("refund for order %s was already made; nothing to do", r.order_id)
        return
    paid = await db[LEDGER].find_one({"key": payment_key(r.order_id)}, session=s)
    if paid is None or paid["account"] != r.user_id:
        raise RejectEvent(f"no payment of order {r.order_id} by user {r.user_id} to refund")
    if not 0 <= r.amount_cents <= -paid["amount_cents"]:
        raise RejectEvent(f"refund {r.amount_cents} for order {r.order_id} exceeds the {-paid['amount_cents']} paid")
    account = await db[ACCOUNTS].find_one_and_update(
        {"_id": r.user_id},
        {"$inc": {"balance_cents": r.amount_cents}},
        return_document=ReturnDocument.AFTER,
        session=s,
    )
    if account is None:
        raise RejectEvent(f"account {r.user_id} is gone")
    at, txn = utcnow(), new_id()
    user_entry = _entry(
        refund_key(r.order_id),
        r.user_id,
        r.amount_cents,
        at=at,
        txn=txn,
        kind="refund",
        ref=r.order_id,
        category_id=paid.get("category_id"),
        sku_id=paid.get("sku_id"),
        description=r.reason,
        balance_after_cents=account["balance_cents"],
    )
    await db[LEDGER].insert_many(
        [
            user_entry,
            _entry(
                f"refund:{r.order_id}:platform",
                PLATFORM_REFUNDS,
                -r.amount_cents,
                at=at,
                txn=txn,
                kind="refund",
                ref=r.order_id,
            ),
        ],
        session=s,
    )
    tx.emit(
        RefundCompleted(order_id=r.order_id, user_id=r.user_id, amount_cents=r.amount_cents, entry_id=user_entry["_id"])
    )


async def credit_topup(
    tx: Tx, topup_id: str, *, points_per_yuan: int, via: str, extra: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Mark a pending top-up succeeded and credit it, once. None when it was no longer pending
    (a repeated notification, a poll racing a notification): nothing is credited again."""
    db, s = tx.db, tx.session
    now = utcnow()
    topup: dict[str, Any] | None = await db[TOPUPS].find_one_and_update(
        {"_id": topup_id, "status": "pending"},
        {"$set": {"status": "succeeded", "succeeded_at": now, "credited_via": via, **(extra or {})}},
        return_document=ReturnDocument.AFTER,
        session=s,
    )
    if topup is None:
        return None
    amount, user_id, channel = topup["amount_cents"], topup["user_id"], topup["channel"]
    points = points_for_topup(amount, points_per_yuan)
    account = await db[ACCOUNTS].find_one_and_update(
        {"_id": user_id},
        {"$inc": {"balance_cents": amount, "points": points}},
        return_document=ReturnDocument.AFTER,
        session=s,
    )
    if account is None:
        raise RuntimeError(f"top-up {topup_id} for user {user_id} who has no account")
    txn = new_id()
    entries = [
        _entry(
            f"topup:{topup_id}:user",
            user_id,
            amount,
            at=now,
            txn=txn,
            kind="topup",
            ref=topup_id,
            points=points,
            channel=channel,
            balance_after_cents=account["balance_cents"],
            points_after=account["points"],
        ),
        _entry(f"topup:{topup_id}:cash", platform_cash(channel), -amount, at=now, txn=txn, kind="topup", ref=topup_id),
    ]
    if points:
        entries.append(
            _entry(
                f"topup:{topup_id}:points",
                PLATFORM_POINTS,
                0,
                at=now,
                txn=txn,
                kind="topup",
                ref=topup_id,
                points=-points,
            )
        )
    await db[LEDGER].insert_many(entries, session=s)
    tx.emit(TopupSucceeded(topup_id=topup_id, user_id=user_id, amount_cents=amount, points=points, channel=channel))
    return topup


async def fail_topup(tx: Tx, topup_id: str, *, reason: str, extra: dict[str, Any] | None = None) -> bool:
    result = await tx.db[TOPUPS].update_one(
        {"_id": topup_id, "status": "pending"},
        {"$set": {"status": "failed", "failed_at": utcnow(), "failure_reason": reason, **(extra or {})}},
        session=tx.session,
    )
    return result.modified_count == 1
