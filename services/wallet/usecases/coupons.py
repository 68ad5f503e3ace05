"""Coupons: staff define, change, list and grant them; an order's coupon is held when it is
placed, consumed by its payment (same transaction as the debit, see `payments`) or released when
the order ends unpaid. Every grant count changes by a guarded `$inc` (`WalletStore`), so a coupon
is never held or used more often than it was granted; a hold the rules refuse is stored as
`rejected`, so the payment is declined with `coupon-unavailable`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from pymongo.errors import DuplicateKeyError

from services.wallet.deps import WalletDeps
from services.wallet.domain import (
    Coupon,
    HoldStatus,
    coupon_problem,
    definition_errors,
    discount_cents,
    grantable,
)
from services.wallet.schemas import CouponChange, CouponRequest
from services.wallet.store import WalletStore
from shared.contracts.envelope import new_id, utcnow
from shared.contracts.order import OrderPlaced
from shared.contracts.wallet import CouponDefined, CouponGranted
from shared.coupons import coupon_from
from shared.errors import Problem, not_found, validation_problem
from shared.messaging.outbox import Tx

log = logging.getLogger(__name__)

Doc = dict[str, Any]


def defined_event(doc: Doc) -> CouponDefined:
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


# -- staff ------------------------------------------------------------------------------------------


async def define_coupon(deps: WalletDeps, data: CouponRequest) -> str:
    """Define a coupon (422 for bad rules, 409 when the code is taken): its code."""
    code = (data.code or new_id()[:10]).strip().upper()
    rules = Coupon(
        code=code,
        kind=data.kind,
        amount_off_cents=data.amount_off_cents,
        percent_off_bp=data.percent_off_bp,
        max_discount_cents=data.max_discount_cents,
        min_spend_cents=data.min_spend_cents,
        sku_ids=tuple(data.sku_ids),
        category_ids=tuple(data.category_ids),
        starts_at=data.starts_at,
        expires_at=data.expires_at,
        per_user_limit=data.per_user_limit,
        first_order_only=data.first_order_only,
    )
    naive = [n for n in ("starts_at", "expires_at") if (t := getattr(data, n)) is not None and t.tzinfo is None]
    errors = (
        [{"field": n, "message": "give a time zone, e.g. 2027-01-01T00:00:00Z"} for n in naive]
        if naive
        else definition_errors(rules, utcnow())
    )
    if not 1 <= len(code) <= 40 or not code.replace("-", "").replace("_", "").isalnum():
        errors.append({"field": "code", "message": "1-40 letters, digits, - or _"})
    for name in ("amount_off_cents", "min_spend_cents", "max_discount_cents"):
        value = getattr(data, name)
        if value is not None and value < 0:
            errors.append({"field": name, "message": "must not be negative"})
    if errors:
        raise validation_problem(errors)
    doc = {
        "_id": code,
        **{k: v for k, v in msgspec.to_builtins(data, builtin_types=(datetime,)).items() if k != "code"},
        "active": True,
        "revision": 1,
        "created_at": utcnow(),
    }

    async def write(tx: Tx) -> None:
        await deps.store.add_coupon(tx, doc)
        tx.emit(defined_event(doc))

    try:
        await deps.uow.run(write)
    except DuplicateKeyError as exc:
        raise Problem(409, "coupon-exists", "Coupon exists", f"coupon {code} is already defined") from exc
    return code


async def change_coupon(deps: WalletDeps, code: str, data: CouponChange) -> Doc:
    """Switch a coupon off or on, move its expiry, describe it: the coupon after (404, 422)."""
    changes = {k: v for k, v in msgspec.to_builtins(data, builtin_types=(datetime,)).items() if v is not None}
    if data.expires_at is not None and (data.expires_at.tzinfo is None or data.expires_at <= utcnow()):
        raise validation_problem([{"field": "expires_at", "message": "a future time with a time zone"}])
    if not changes:
        raise validation_problem([{"field": "body", "message": "nothing to change"}])

    async def write(tx: Tx) -> Doc | None:
        doc = await deps.store.change_coupon(tx, code, changes)
        if doc is not None:
            tx.emit(defined_event(doc))  # the order service's projection follows
        return doc

    doc = await deps.uow.run(write)
    if doc is None:
        raise not_found("coupon")
    return doc


async def list_coupons(deps: WalletDeps) -> list[Doc]:
    return await deps.store.coupons()


async def grant_coupon(deps: WalletDeps, code: str, user_ids: Sequence[str], quantity: int) -> list[tuple[str, int]]:
    """Give a coupon to users, up to its per-user limit: [(user, granted)] (0 = limit reached)."""
    users = list(dict.fromkeys(u.strip() for u in user_ids if u.strip()))
    errors = []
    if not 1 <= len(users) <= 1000:
        errors.append({"field": "user_ids", "message": "1 to 1000 user ids"})
    if not 1 <= quantity <= 100:
        errors.append({"field": "quantity", "message": "1 to 100"})
    if errors:
        raise validation_problem(errors)
    coupon = await deps.store.coupon(code)
    if coupon is None:
        raise not_found("coupon")
    if not coupon.get("active", True) or coupon["expires_at"] <= utcnow():
        raise Problem(409, "coupon-expired", "Coupon not grantable", "the coupon is inactive or expired")

    async def write(tx: Tx) -> list[tuple[str, int]]:
        return await grant(deps.store, tx, coupon, users, quantity)

    return await deps.uow.run(write)


async def grant(store: WalletStore, tx: Tx, coupon: Doc, user_ids: list[str], quantity: int) -> list[tuple[str, int]]:
    """Grant up to `quantity` to each user, never past the per-user limit: [(user, granted)]."""
    code, limit = coupon["_id"], coupon.get("per_user_limit", 1)
    existing = await store.granted_totals(tx, code, user_ids)
    grants, result = [], []
    for user_id in user_ids:
        already = existing.get(user_id, 0)
        n = grantable(already, quantity, limit)
        result.append((user_id, n))
        if n == 0:
            continue
        grants.append((user_id, already, n))
        tx.emit(CouponGranted(user_id=user_id, code=code, quantity=n, total_granted=already + n))
    await store.add_grants(tx, code, grants)
    return result


async def grant_on_signup(store: WalletStore, tx: Tx, user_id: str, now: datetime) -> None:
    """New users get one of every active coupon marked `grant_on_signup` (e.g. 首单立减)."""
    for coupon in await store.signup_coupons(tx, now):
        await grant(store, tx, coupon, [user_id], 1)


# -- orders -------------------------------------------------------------------------------------------


async def hold_coupon(tx: Tx, placed: OrderPlaced, store: WalletStore | None = None) -> None:
    """Hold the order's coupon (order.placed); a refused hold is recorded as `rejected`."""
    store = store or WalletStore(tx.db)
    if not placed.coupon_code:
        return
    if await store.hold_exists(tx, placed.order_id):
        return  # the same order placed twice (a duplicate event): held once
    code, now = placed.coupon_code, utcnow()
    reason = await _hold_problem(store, tx, placed, now)
    if reason is None and not await store.take_grant(tx, code, placed.user_id):
        reason = "not-granted-or-used-up"
    await store.add_hold(
        tx,
        {
            "_id": placed.order_id,
            "code": code,
            "user_id": placed.user_id,
            "status": (HoldStatus.HELD if reason is None else HoldStatus.REJECTED).value,
            "reason": reason,
            "discount_cents": placed.discount_cents,
            "at": now,
        },
    )
    if reason:
        log.info("coupon %s not held for order %s: %s", code, placed.order_id, reason)


async def _hold_problem(store: WalletStore, tx: Tx, placed: OrderPlaced, now: datetime) -> str | None:
    assert placed.coupon_code is not None
    doc = await store.coupon(placed.coupon_code, tx)
    if doc is None:
        return "unknown-coupon"
    coupon = coupon_from(doc)
    account = await store.account(placed.user_id, tx)
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


async def consume(store: WalletStore, tx: Tx, *, order_id: str, user_id: str, code: str) -> None:
    """In the payment's transaction: held -> consumed, the grant's held -> used."""
    if await store.move_hold(tx, order_id, HoldStatus.CONSUMED, {"consumed_at": utcnow()}) is None:
        raise RuntimeError(f"hold of order {order_id} changed under the payment")
    await store.settle_grant(tx, code, user_id, used=True)


async def release_coupon(tx: Tx, order_id: str, why: str, store: WalletStore | None = None) -> bool:
    """Order cancelled or expired: a held coupon goes back to the user's available ones. Order
    refunded (`why == "refunded"`): a consumed one goes back too."""
    store = store or WalletStore(tx.db)
    fields = {"released_at": utcnow(), "released_because": why}
    hold = await store.move_hold(tx, order_id, HoldStatus.RELEASED, fields, source=HoldStatus.HELD)
    if hold is not None:
        await store.settle_grant(tx, hold["code"], hold["user_id"], used=False)
        return True
    if why != "refunded":
        return False
    hold = await store.move_hold(tx, order_id, HoldStatus.RELEASED, fields, source=HoldStatus.CONSUMED)
    if hold is None:
        return False
    await store.settle_grant(tx, hold["code"], hold["user_id"], used=False, from_used=True)
    return True
