"""Payments and refunds of orders (order.payment-requested, order.refund-requested), each a few
writes in the handler's transaction: one guarded update of the account (the guard refuses an
overdraft, however many debits race) and one insert of the movement's entries (`domain.postings`:
they sum to zero and carry unique keys, so a movement applied twice aborts, never books twice).
"""

from __future__ import annotations

import logging

from services.wallet.domain import payment_postings, refund_postings, user_key
from services.wallet.store import WalletStore
from services.wallet.usecases import coupons
from shared.contracts.envelope import utcnow
from shared.contracts.order import PaymentRequested, RefundRequested
from shared.contracts.wallet import PaymentCaptured, PaymentDeclined, RefundCompleted
from shared.messaging.consumer import RejectEvent
from shared.messaging.outbox import Tx

log = logging.getLogger(__name__)

INSUFFICIENT = "insufficient-balance"
NO_ACCOUNT = "no-account"
COUPON_UNAVAILABLE = "coupon-unavailable"


def payment_key(order_id: str) -> str:
    return user_key("payment", order_id)


def refund_key(order_id: str) -> str:
    return user_key("refund", order_id)


async def capture_payment(tx: Tx, p: PaymentRequested, store: WalletStore | None = None) -> None:
    """Debit an order once (ledger key = order id) and answer captured or declined; with a coupon
    only while its hold is usable, consuming it in the same transaction. `store` defaults to the
    store over the transaction's database (the one the service's deps hold)."""
    store = store or WalletStore(tx.db)
    if p.amount_cents < 0:
        # Zero is allowed: an order fully paid by a coupon still consumes the coupon here.
        raise RejectEvent(f"payment for order {p.order_id} must not be negative, got {p.amount_cents}")
    done = await store.entry(tx, payment_key(p.order_id)) is not None
    if done or await store.declined(tx, p.order_id):
        log.info("payment for order %s was already %s; nothing to do", p.order_id, "captured" if done else "declined")
        return

    coupon_order = p.coupon_order_id or p.order_id
    if p.coupon_code and (
        await store.usable_hold(tx, order_id=coupon_order, user_id=p.user_id, code=p.coupon_code) is None
    ):
        await decline(store, tx, p, COUPON_UNAVAILABLE)
        return
    await debit(store, tx, p, with_coupon=bool(p.coupon_code))


async def debit(store: WalletStore, tx: Tx, p: PaymentRequested, *, with_coupon: bool) -> bool:
    """Debit the order's amount once, consume its held coupon (`with_coupon`), book the entries
    and answer captured; or answer declined. True when captured."""
    first_order_only = False
    if with_coupon and p.coupon_code:
        coupon = await store.coupon(p.coupon_code, tx)
        first_order_only = bool(coupon and coupon.get("first_order_only"))

    account = await store.debit(tx, p.user_id, p.amount_cents, first_paid_order=first_order_only)
    if account is None:
        current = await store.account(p.user_id, tx)
        if current is None:
            reason = NO_ACCOUNT
        elif first_order_only and current.get("paid_orders", 0) > 0:
            reason = COUPON_UNAVAILABLE
        else:
            reason = INSUFFICIENT
        await decline(store, tx, p, reason, None if current is None else current["balance_cents"])
        return False

    if with_coupon and p.coupon_code:
        coupon_order = p.coupon_order_id or p.order_id
        await coupons.consume(store, tx, order_id=coupon_order, user_id=p.user_id, code=p.coupon_code)
    entries = payment_postings(
        p.order_id,
        p.user_id,
        p.amount_cents,
        at=utcnow(),
        user_fields={
            "category_id": p.category_id,
            "sku_id": p.sku_id,
            "description": p.description,
            "coupon_code": p.coupon_code if with_coupon else None,
            "balance_after_cents": account["balance_cents"],
        },
    )
    await store.book(tx, entries)
    entry_id = next(e["_id"] for e in entries if e["key"] == payment_key(p.order_id))
    tx.emit(PaymentCaptured(order_id=p.order_id, user_id=p.user_id, amount_cents=p.amount_cents, entry_id=entry_id))
    return True


async def decline(
    store: WalletStore, tx: Tx, p: PaymentRequested, reason: str, balance_cents: int | None = None
) -> None:
    await store.record_decline(
        tx, {"_id": p.order_id, "user_id": p.user_id, "reason": reason, "amount_cents": p.amount_cents, "at": utcnow()}
    )
    log.info("payment for order %s declined: %s", p.order_id, reason)
    tx.emit(PaymentDeclined(order_id=p.order_id, user_id=p.user_id, reason=reason, balance_cents=balance_cents))


async def refund_payment(tx: Tx, r: RefundRequested, store: WalletStore | None = None) -> None:
    """Give an order's money back once (ledger key = order id), never more than was captured."""
    store = store or WalletStore(tx.db)
    if await store.entry(tx, refund_key(r.order_id)) is not None:
        log.info("refund for order %s was already made; nothing to do", r.order_id)
        return
    paid = await store.entry(tx, payment_key(r.order_id))
    if paid is None or paid["account"] != r.user_id:
        raise RejectEvent(f"no payment of order {r.order_id} by user {r.user_id} to refund")
    if not 0 <= r.amount_cents <= -paid["amount_cents"]:
        raise RejectEvent(f"refund {r.amount_cents} for order {r.order_id} exceeds the {-paid['amount_cents']} paid")
    account = await store.credit(tx, r.user_id, r.amount_cents)
    if account is None:
        raise RejectEvent(f"account {r.user_id} is gone")
    entries = refund_postings(
        r.order_id,
        r.user_id,
        r.amount_cents,
        at=utcnow(),
        user_fields={
            "category_id": paid.get("category_id"),
            "sku_id": paid.get("sku_id"),
            "description": r.reason,
            "balance_after_cents": account["balance_cents"],
        },
    )
    await store.book(tx, entries)
    # The rule: a refunded order gives its coupon back (a no-op without one).
    await coupons.release_coupon(tx, r.order_id, "refunded", store)
    entry_id = next(e["_id"] for e in entries if e["key"] == refund_key(r.order_id))
    tx.emit(RefundCompleted(order_id=r.order_id, user_id=r.user_id, amount_cents=r.amount_cents, entry_id=entry_id))
