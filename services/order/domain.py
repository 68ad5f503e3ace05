"""Order rules, pure: statuses and the transitions allowed between them, recipient validation,
purchase limits and pricing of a quote. No I/O: every function here is unit-tested on its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from shared.contracts.catalog import RecipientField, SkuChanged
from shared.pricing import unit_price


class Status(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUNDING = "refunding"
    REFUNDED = "refunded"


S = Status
# Every status change goes through this table; anything else is refused (an event that does not
# fit the order's current state is acknowledged and ignored, never applied).
TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    S.PENDING_PAYMENT: frozenset({S.PAID, S.CANCELLED, S.EXPIRED}),
    S.PAID: frozenset({S.DELIVERING, S.DELIVERED, S.REFUNDING}),
    S.DELIVERING: frozenset({S.DELIVERED, S.REFUNDING}),
    S.DELIVERED: frozenset({S.REFUNDING}),  # after-sales refund
    # Money captured after the order had expired or was cancelled goes back.
    S.EXPIRED: frozenset({S.REFUNDING}),
    S.CANCELLED: frozenset({S.REFUNDING}),
    S.REFUNDING: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
}

# Order-center groups (待发货 / 已完成 / 售后 is a ticket view, kept by support).
GROUPS: Mapping[str, frozenset[Status]] = {
    "pending": frozenset({S.PENDING_PAYMENT}),
    "awaiting_delivery": frozenset({S.PAID, S.DELIVERING}),
    "completed": frozenset({S.DELIVERED}),
    "closed": frozenset({S.CANCELLED, S.EXPIRED, S.REFUNDING, S.REFUNDED}),
}
HOLDING_STOCK = frozenset({S.PENDING_PAYMENT, S.PAID, S.DELIVERING})


def can_move(current: Status, target: Status) -> bool:
    return target in TRANSITIONS[current]


# -- recipients ---------------------------------------------------------------------------

MOBILE = re.compile(r"^1[3-9]\d{9}$")
# Mainland number segments by carrier (2024 allocations; 虚拟运营商 170/171 shown as virtual).
_CARRIERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "中国移动",
        (
            "134",
            "135",
            "136",
            "137",
            "138",
            "139",
            "147",
            "148",
            "150",
            "151",
            "152",
            "157",
            "158",
            "159",
            "172",
            "178",
            "182",
            "183",
            "184",
            "187",
            "188",
            "195",
            "197",
            "198",
        ),
    ),
    ("中国联通", ("130", "131", "132", "145", "146", "155", "156", "166", "167", "175", "176", "185", "186", "196")),
    ("中国电信", ("133", "149", "153", "173", "174", "177", "180", "181", "189", "190", "191", "193", "199")),
    ("中国广电", ("192",)),
    ("虚拟运营商", ("162", "165", "170", "171")),
)


def carrier_of(mobile: str) -> str | None:
    if not MOBILE.match(mobile):
        return None
    return next((name for name, prefixes in _CARRIERS if mobile[:3] in prefixes), None)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def validate_recipient(
    fields: Sequence[RecipientField], given: Mapping[str, str]
) -> tuple[dict[str, str], list[FieldError]]:
    """The cleaned recipient (only the SKU's fields, trimmed) and what is wrong with it."""
    errors: list[FieldError] = []
    clean: dict[str, str] = {}
    known = {f.name for f in fields}
    for name in given:
        if name not in known:
            errors.append(FieldError(f"recipient.{name}", "this product does not take this field"))
    for f in fields:
        raw = given.get(f.name)
        value = raw.strip() if isinstance(raw, str) else ""
        where = f"recipient.{f.name}"
        if raw is not None and not isinstance(raw, str):
            errors.append(FieldError(where, "must be text"))
            continue
        if not value:
            if f.required:
                errors.append(FieldError(where, f"{f.label} is required"))
            continue
        if f.min_length is not None and len(value) < f.min_length:
            errors.append(FieldError(where, f"{f.label} must have at least {f.min_length} characters"))
        elif f.max_length is not None and len(value) > f.max_length:
            errors.append(FieldError(where, f"{f.label} must have at most {f.max_length} characters"))
        elif f.pattern is not None and not re.fullmatch(f.pattern, value):
            errors.append(FieldError(where, f"{f.label} is not in the expected format"))
        else:
            clean[f.name] = value
    return clean, errors


def recipient_notes(recipient: Mapping[str, str]) -> dict[str, str]:
    """What the preview shows next to the recipient (信息预览): e.g. the mobile number's carrier."""
    notes: dict[str, str] = {}
    for name, value in recipient.items():
        carrier = carrier_of(value)
        if carrier is not None:
            notes[f"{name}.carrier"] = carrier
    return notes


# -- quotes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    unit_price_cents: int
    quantity: int
    subtotal_cents: int
    discount_cents: int
    total_cents: int
    recipient: dict[str, str]
    notes: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)


@dataclass(frozen=True)
class Buyer:
    user_id: str
    level: str
    real_name_verified: bool
    bought_of_sku: int = 0
    """Units of this SKU in the buyer's orders that still count against a per-user limit."""


def quote(
    sku: SkuChanged,
    buyer: Buyer,
    quantity: int,
    recipient: Mapping[str, str],
    *,
    discount_cents: int = 0,
    sellable: int | None = None,
    low_stock: int = 10,
) -> Quote:
    """Price an order and list every reason it cannot be placed (errors) or should be double-checked
    (warnings). `discount_cents` comes from the coupon rules; it never exceeds the subtotal."""
    errors: list[FieldError] = []
    warnings: list[str] = []
    if not sku.on_sale:
        errors.append(FieldError("sku_id", "this product is not on sale"))
    if quantity < 1:
        errors.append(FieldError("quantity", "must be at least 1"))
    if sku.max_per_order is not None and quantity > sku.max_per_order:
        errors.append(FieldError("quantity", f"at most {sku.max_per_order} per order"))
    if sku.max_per_user is not None and buyer.bought_of_sku + quantity > sku.max_per_user:
        left = max(sku.max_per_user - buyer.bought_of_sku, 0)
        errors.append(FieldError("quantity", f"at most {sku.max_per_user} per buyer; {left} left for you"))
    if sku.requires_real_name and not buyer.real_name_verified:
        errors.append(FieldError("recipient", "this product requires real-name verification (实名认证) first"))
    clean, recipient_errors = validate_recipient(sku.recipient_fields, recipient)
    errors += recipient_errors
    if sellable is not None and quantity > 0:
        if sellable < quantity:
            warnings.append(f"only {max(sellable, 0)} left in stock")
        elif sellable - quantity < low_stock:
            warnings.append("low stock")
    if sku.delivery_mode == "manual":
        warnings.append("delivered by staff, usually within 1-5 hours")
    elif sku.delivery_mode == "direct":
        warnings.append("direct top-up, usually arrives within 1-10 minutes")
    unit = unit_price(sku.prices, sku.wholesale, buyer.level, max(quantity, 1))
    subtotal = unit * max(quantity, 0)
    discount = min(max(discount_cents, 0), subtotal)
    return Quote(
        unit_price_cents=unit,
        quantity=quantity,
        subtotal_cents=subtotal,
        discount_cents=discount,
        total_cents=subtotal - discount,
        recipient=clean,
        notes=recipient_notes(clean),
        warnings=warnings,
        errors=errors,
    )


def payment_deadline(placed_at: datetime, minutes: float) -> datetime:
    return placed_at + timedelta(minutes=minutes)


def may_cancel(status: Status, placed_at: datetime, now: datetime, window_minutes: float) -> str | None:
    """None when the buyer may cancel now; otherwise why not."""
    if status not in (S.PENDING_PAYMENT, S.PAID, S.DELIVERING):
        return f"an order that is {status.value} cannot be cancelled"
    if now - placed_at > timedelta(minutes=window_minutes):
        return f"orders can only be cancelled within {window_minutes:g} minutes"
    return None


def may_urge(
    status: Status, paid_at: datetime | None, last_urged_at: datetime | None, now: datetime, wait_minutes: float
) -> str | None:
    """None when the buyer may urge (催单) now; otherwise why not."""
    if status not in (S.PAID, S.DELIVERING) or paid_at is None:
        return "only paid orders that are not delivered yet can be urged"
    since = last_urged_at or paid_at
    if now - since < timedelta(minutes=wait_minutes):
        return f"you can urge {wait_minutes:g} minutes after payment or after the last urge"
    return None
