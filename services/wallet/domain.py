"""Pure wallet rules: coupon eligibility and discounts, points, provider signatures, reports.

No I/O here. The order service imports the coupon rules (`Coupon`, `coupon_problem`,
`discount_cents`) to price quotes from its projection of `wallet.coupon-defined`, so a quote and
the wallet's authoritative hold agree on the same numbers.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
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


def definition_errors(coupon: Coupon, now: datetime) -> list[dict[str, str]]:
    """What is wrong with a coupon an admin defines (empty when it is valid)."""
    errors: list[dict[str, str]] = []
    if coupon.kind == "fixed" and coupon.amount_off_cents <= 0:
        errors.append({"field": "amount_off_cents", "message": "a fixed coupon needs amount_off_cents > 0"})
    if coupon.kind == "percent" and not 0 < coupon.percent_off_bp <= 10000:
        errors.append({"field": "percent_off_bp", "message": "a percent coupon needs 1..10000 basis points"})
    if coupon.expires_at <= now:
        errors.append({"field": "expires_at", "message": "must be in the future"})
    if coupon.starts_at is not None and coupon.starts_at >= coupon.expires_at:
        errors.append({"field": "starts_at", "message": "must be before expires_at"})
    if coupon.per_user_limit < 1:
        errors.append({"field": "per_user_limit", "message": "must be at least 1"})
    return errors


def grantable(already_granted: int, quantity: int, per_user_limit: int) -> int:
    """How many of `quantity` may still be granted to a user who holds `already_granted`."""
    return max(0, min(quantity, per_user_limit - already_granted))


# -- points ------------------------------------------------------------------------------------


def points_for_topup(amount_cents: int, points_per_yuan: int) -> int:
    """Points earned by a top-up: `points_per_yuan` for every whole yuan (100 cents)."""
    return (amount_cents // 100) * max(0, points_per_yuan)


# -- payment provider signatures ---------------------------------------------------------------


def canonical(fields: Mapping[str, Any]) -> bytes:
    """`k1=v1&k2=v2` over the fields sorted by name, leaving out `sign` and empty values: the
    string the provider signs (the way Alipay/WeChat-style gateways do it)."""
    parts = [f"{k}={fields[k]}" for k in sorted(fields) if k != "sign" and fields[k] not in (None, "")]
    return "&".join(parts).encode()


def sign(fields: Mapping[str, Any], secret: str) -> str:
    return hmac.new(secret.encode(), canonical(fields), hashlib.sha256).hexdigest()


def signature_valid(fields: Mapping[str, Any], secret: str) -> bool:
    given = fields.get("sign")
    return isinstance(given, str) and hmac.compare_digest(given, sign(fields, secret))


# -- statements --------------------------------------------------------------------------------


class ReportLine(msgspec.Struct, frozen=True, kw_only=True):
    """One ledger entry as the report needs it: a payment (negative) or refund (positive)."""

    month: str
    category_id: str
    amount_cents: int
    kind: Literal["payment", "refund"]


def spending_report(lines: Iterable[ReportLine]) -> dict[str, Any]:
    """Spending per month and per category. Spent = payments minus their refunds; shares are in
    basis points of the total spent (integers, so they are exact and reproducible)."""
    months: dict[str, dict[str, Any]] = {}
    categories: dict[str, int] = {}
    for line in lines:
        month = months.setdefault(line.month, {"spent_cents": 0, "refunded_cents": 0, "by_category": {}})
        # Payments are negative entries, refunds positive: net spending is minus their sum.
        month["spent_cents" if line.kind == "payment" else "refunded_cents"] += abs(line.amount_cents)
        delta = -line.amount_cents
        month["by_category"][line.category_id] = month["by_category"].get(line.category_id, 0) + delta
        categories[line.category_id] = categories.get(line.category_id, 0) + delta
    total_net = sum(categories.values())

    def shares(amounts: Mapping[str, int], total: int) -> list[dict[str, Any]]:
        return [
            {"category_id": c, "net_spent_cents": v, "share_bp": (v * 10000 // total) if total > 0 else 0}
            for c, v in sorted(amounts.items(), key=lambda kv: (-kv[1], kv[0]))
        ]

    return {
        "months": [
            {
                "month": m,
                "spent_cents": d["spent_cents"],
                "refunded_cents": d["refunded_cents"],
                "net_spent_cents": d["spent_cents"] - d["refunded_cents"],
                "by_category": shares(d["by_category"], d["spent_cents"] - d["refunded_cents"]),
            }
            for m, d in sorted(months.items())
        ],
        "by_category": shares(categories, total_net),
        "total_spent_cents": sum(d["spent_cents"] for d in months.values()),
        "total_refunded_cents": sum(d["refunded_cents"] for d in months.values()),
        "net_spent_cents": total_net,
    }


def month_of(at: datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}"


def months_back(now: datetime, months: int) -> datetime:
    """The first instant of the month `months - 1` months before `now`'s (months=1: this month)."""
    index = now.year * 12 + (now.month - 1) - (months - 1)
    return now.replace(year=index // 12, month=index % 12 + 1, day=1, hour=0, minute=0, second=0, microsecond=0)
