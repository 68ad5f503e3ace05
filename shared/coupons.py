"""The one coupon rule, pure: what a coupon is, why it cannot apply to an order, and the discount
it gives. The wallet (the authority: it holds and consumes coupons) and the order service (which
prices quotes and orders from its projection of `wallet.coupon-defined`) both use these, so a
quote and the wallet's hold always agree on the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import msgspec

from shared.money import apply_rate

CouponKind = Literal["fixed", "percent"]

# Why a coupon cannot be used; the same slugs appear in API errors and logs.
NOT_STARTED = "not-started"
EXPIRED = "expired"
BELOW_MINIMUM = "below-minimum-spend"
NOT_APPLICABLE = "not-applicable-to-item"
NOT_FIRST_ORDER = "first-order-only"
INACTIVE = "inactive"
UNKNOWN = "unknown-coupon"
NOT_OWNED = "not-granted-or-used-up"

MESSAGES: Mapping[str, str] = {
    NOT_STARTED: "this coupon cannot be used yet",
    EXPIRED: "this coupon has expired",
    BELOW_MINIMUM: "the order is below this coupon's minimum spend",
    NOT_APPLICABLE: "this coupon does not apply to this product",
    NOT_FIRST_ORDER: "this coupon is for a first order only",
    INACTIVE: "this coupon is no longer valid",
    UNKNOWN: "no such coupon",
    NOT_OWNED: "you have no unused coupon with this code",
}


def message(reason: str) -> str:
    """The buyer-facing sentence for a reason slug (the API's `coupon_code` field error)."""
    return MESSAGES.get(reason, reason)


class Coupon(msgspec.Struct, frozen=True, kw_only=True):
    """A coupon definition (the rules; who holds how many is a grant)."""

    code: str
    kind: CouponKind
    amount_off_cents: int = 0
    """`fixed`: cents off the order subtotal."""
    percent_off_bp: int = 0
    """`percent`: basis points off (1500 = 15 % off), rounded half-up to the cent."""
    max_discount_cents: int | None = None
    """`percent`: cap on the discount."""
    min_spend_cents: int = 0
    sku_ids: tuple[str, ...] = ()
    category_ids: tuple[str, ...] = ()
    """Empty `sku_ids` and `category_ids` = any item; otherwise the item must match one of them."""
    starts_at: datetime | None = None
    expires_at: datetime
    per_user_limit: int = 1
    first_order_only: bool = False
    active: bool = True


def coupon_from(doc: Mapping[str, Any]) -> Coupon:
    """A coupon from a stored definition (the wallet's `coupons` or the order's projection): the
    code is `_id` or `code`."""
    return Coupon(
        code=doc.get("code") or doc["_id"],
        kind=doc["kind"],
        amount_off_cents=doc.get("amount_off_cents", 0),
        percent_off_bp=doc.get("percent_off_bp", 0),
        max_discount_cents=doc.get("max_discount_cents"),
        min_spend_cents=doc.get("min_spend_cents", 0),
        sku_ids=tuple(doc.get("sku_ids", ())),
        category_ids=tuple(doc.get("category_ids", ())),
        starts_at=doc.get("starts_at"),
        expires_at=doc["expires_at"],
        per_user_limit=doc.get("per_user_limit", 1),
        first_order_only=doc.get("first_order_only", False),
        active=doc.get("active", True),
    )


def coupon_problem(
    coupon: Coupon,
    *,
    sku_id: str,
    category_id: str,
    subtotal_cents: int,
    now: datetime,
    paid_orders: int,
) -> str | None:
    """Why `coupon` cannot apply to this order (a reason slug), or None when it can."""
    if not coupon.active:
        return INACTIVE
    if coupon.starts_at is not None and now < coupon.starts_at:
        return NOT_STARTED
    if now >= coupon.expires_at:
        return EXPIRED
    if subtotal_cents < coupon.min_spend_cents:
        return BELOW_MINIMUM
    if (coupon.sku_ids or coupon.category_ids) and not (sku_id in coupon.sku_ids or category_id in coupon.category_ids):
        return NOT_APPLICABLE
    if coupon.first_order_only and paid_orders > 0:
        return NOT_FIRST_ORDER
    return None


def discount_cents(coupon: Coupon, subtotal_cents: int) -> int:
    """The discount on `subtotal_cents`, never more than the subtotal (an order never goes below 0)."""
    if coupon.kind == "fixed":
        off = coupon.amount_off_cents
    else:
        off = apply_rate(subtotal_cents, coupon.percent_off_bp)
        if coupon.max_discount_cents is not None:
            off = min(off, coupon.max_discount_cents)
    return max(0, min(off, subtotal_cents))
