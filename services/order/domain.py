"""Order rules, pure: statuses and the transition tables of orders and batches, order-center
filters, purchase limits, pricing of a quote, and when a buyer may cancel or urge. No I/O: every
function here is unit-tested on its own. Recipient values are checked by the one shared rule
(`shared/recipients.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum

from shared import coupons
from shared.contracts.catalog import SkuChanged
from shared.coupons import Coupon
from shared.pricing import unit_price
from shared.recipients import FieldError, recipient_notes, validate_recipient
from shared.transitions import Transitions


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
# Every status change goes through this table (the store turns it into guarded updates); anything
# else is refused: an event that does not fit the order's current state is acknowledged and
# ignored, never applied.
ORDER_FLOW: Transitions[Status] = Transitions(
    {
        S.PENDING_PAYMENT: {S.PAID, S.CANCELLED, S.EXPIRED},
        S.PAID: {S.DELIVERING, S.DELIVERED, S.REFUNDING},
        S.DELIVERING: {S.DELIVERED, S.REFUNDING},
        S.DELIVERED: {S.REFUNDING},  # after-sales refund
        # Money captured after the order had expired or was cancelled goes back.
        S.EXPIRED: {S.REFUNDING},
        S.CANCELLED: {S.REFUNDING},
        S.REFUNDING: {S.REFUNDED},
        S.REFUNDED: set(),
    }
)
TRANSITIONS: Mapping[Status, frozenset[Status]] = ORDER_FLOW.table
"""The same table as a plain mapping, for readers and tests."""


class BatchStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    """No row could be ordered: nothing to pay."""


# A batch's one payment settles it once: captured (its orders are paid) or declined (cancelled).
BATCH_FLOW: Transitions[BatchStatus] = Transitions(
    {
        BatchStatus.PENDING_PAYMENT: {BatchStatus.PAID, BatchStatus.CANCELLED},
        BatchStatus.PAID: set(),
        BatchStatus.CANCELLED: set(),
        BatchStatus.REJECTED: set(),
    }
)
BATCH_PREFIX = "B"


def is_batch(payment_id: str) -> bool:
    """A wallet payment id names either one order or a whole batch (`B…`)."""
    return payment_id.startswith(BATCH_PREFIX)


# Order-center groups (待发货 / 已完成 / 售后 is a ticket view, kept by support).
GROUPS: Mapping[str, frozenset[Status]] = {
    "pending": frozenset({S.PENDING_PAYMENT}),
    "awaiting_delivery": frozenset({S.PAID, S.DELIVERING}),
    "completed": frozenset({S.DELIVERED}),
    "closed": frozenset({S.CANCELLED, S.EXPIRED, S.REFUNDING, S.REFUNDED}),
    # 待使用: delivered orders with keys the owner never revealed (the store adds that filter).
    "to_use": frozenset({S.DELIVERED}),
}
UNREVEALED_GROUP = "to_use"
_ONE_STATUS = "|".join(sorted((s.value for s in Status), key=len, reverse=True))
STATUS_LIST_PATTERN = rf"^\s*(?:{_ONE_STATUS})\s*(?:,\s*(?:{_ONE_STATUS})\s*)*$"
"""The `status` filter as the document states it: statuses separated by commas."""
KEYED_MODES = frozenset({"auto", "manual"})
"""Delivery modes that hand the buyer something to reveal (a direct top-up is used already)."""
HOLDING_STOCK = frozenset({S.PENDING_PAYMENT, S.PAID, S.DELIVERING})


def can_move(current: Status, target: Status) -> bool:
    return ORDER_FLOW.can_move(current, target)


def releases_hold(previous: Status, target: Status, held: bool) -> bool:
    """Leaving the statuses that hold stock gives the hold back (a delivered order's keys are
    counted out on the supply side instead)."""
    return held and previous in HOLDING_STOCK and target not in HOLDING_STOCK


# A free trial (免费体验) is claimed once per person when its order is placed (`trials`, one
# document per SKU and person). The claim is given back when the order ends without the buyer
# having received anything, in the transaction that moves it there:
# - cancelled (by the buyer before payment, or the payment was declined) and expired (not paid in
#   time): nothing was ever delivered;
# - refunded when it was never delivered (out of stock, a failed supplier, the buyer cancelling a
#   paid order before anything went out): the buyer did not get to try it.
# Given back only once the order is final: `refunding` leads to `refunded` alone, so waiting costs
# nothing and the claim never goes back while the wallet still works on the order.
# A delivered order keeps its claim even when after-sales refunds it later: the buyer had the key
# and could use it (a free trial refunds no money), and giving the claim back would turn every
# after-sales ticket into another free key.
TRIAL_GIVEN_BACK = frozenset({S.CANCELLED, S.EXPIRED, S.REFUNDED})


def was_delivered(order: Mapping[str, object]) -> bool:
    """Whether an order ever reached `delivered` (an after-sales refund comes after it)."""
    history = order.get("history")
    in_history = isinstance(history, list) and any(
        isinstance(h, Mapping) and h.get("status") == S.DELIVERED.value for h in history
    )
    return order.get("delivered_at") is not None or in_history


def gives_trial_back(target: Status, order: Mapping[str, object]) -> bool:
    """Whether moving `order` (as it was before the move) to `target` gives its trial claim back."""
    return target in TRIAL_GIVEN_BACK and not was_delivered(order)


def status_filter(status: str | None, group: str | None) -> tuple[list[str] | None, list[FieldError]]:
    """The statuses an order-center query asks for (None: all) and what is wrong with the query.
    An explicit `status` list wins over a `group` (both are checked)."""
    wanted: list[str] | None = None
    if status is not None:
        wanted = [s.strip() for s in status.split(",")]
        bad = [repr(s) for s in wanted if s not in Status._value2member_map_]
        if bad:
            return None, [FieldError("status", f"unknown status {', '.join(bad)}")]
    if group is not None:
        if group not in GROUPS:
            return None, [FieldError("group", f"one of {', '.join(GROUPS)}")]
        if wanted is None:
            wanted = [s.value for s in GROUPS[group]]
    return wanted, []


# -- coupons (the one rule is shared with the wallet: `shared/coupons.py`) ---------------------

PAID_STATUSES = frozenset({S.PAID, S.DELIVERING, S.DELIVERED, S.REFUNDING, S.REFUNDED})
USING_COUPON = frozenset({S.PENDING_PAYMENT, S.PAID, S.DELIVERING, S.DELIVERED})
"""An order in these statuses holds or has used its coupon; cancelled, expired and refunded
orders gave it back (the wallet releases it on the same events)."""


def coupon_discount(
    coupon: Coupon | None,
    *,
    granted: int,
    in_use: int,
    sku_id: str,
    category_id: str,
    subtotal_cents: int,
    paid_orders: int,
    now: datetime,
) -> tuple[int, str | None]:
    """The discount a buyer's coupon gives this order, or why it cannot be used (a reason slug of
    `shared.coupons`): unknown, not the buyer's (never granted, or every one held or used by
    other orders), or refused by the coupon's rules (expired, below the minimum spend, ...)."""
    if coupon is None:
        return 0, coupons.UNKNOWN
    problem = coupons.coupon_problem(
        coupon, sku_id=sku_id, category_id=category_id, subtotal_cents=subtotal_cents, now=now, paid_orders=paid_orders
    )
    if problem is not None:
        return 0, problem
    if granted - in_use < 1:
        return 0, coupons.NOT_OWNED
    return coupons.discount_cents(coupon, subtotal_cents), None


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


def at_unit_price(q: Quote, unit_price_cents: int) -> Quote:
    """The quote at another unit price (a sub-site's), before any coupon."""
    subtotal = unit_price_cents * max(q.quantity, 0)
    return replace(
        q, unit_price_cents=unit_price_cents, subtotal_cents=subtotal, discount_cents=0, total_cents=subtotal
    )


def with_discount(q: Quote, discount_cents: int) -> Quote:
    """The quote with a coupon's discount (never more than the subtotal)."""
    discount = min(max(discount_cents, 0), q.subtotal_cents)
    return replace(q, discount_cents=discount, total_cents=q.subtotal_cents - discount)


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


# -- scheduled orders (自动充值) -------------------------------------------------------------

SCHEDULE_ZONE = timezone(timedelta(hours=8))
"""Buyers say "the 1st of the month at 9": China Standard Time (no daylight saving)."""
EVERY = ("month", "week")
MAX_SUBSCRIPTIONS = 20
"""Active subscriptions per buyer: a family's phones and game accounts, not a bot's thousands."""
RUN_OK = frozenset({S.PAID, S.DELIVERING, S.DELIVERED, S.REFUNDING, S.REFUNDED})
"""A run whose order reached one of these was paid: the run succeeded (what happens to the
delivery afterwards is the order's story, told by its own notices)."""


def schedule_errors(every: str, day: int, hour: int) -> list[FieldError]:
    """`every: month` takes day 1..31 (a short month runs on its last day), `week` 1..7
    (Monday = 1); hour 0..23 in China Standard Time."""
    errors: list[FieldError] = []
    if every not in EVERY:
        errors.append(FieldError("every", "month or week"))
    elif every == "month" and not 1 <= day <= 31:
        errors.append(FieldError("day", "1..31 (day of the month)"))
    elif every == "week" and not 1 <= day <= 7:
        errors.append(FieldError("day", "1..7 (Monday is 1)"))
    if not 0 <= hour <= 23:
        errors.append(FieldError("hour", "0..23"))
    return errors


def next_run_at(every: str, day: int, hour: int, after: datetime, *, period_seconds: float = 0) -> datetime:
    """The first scheduled time strictly after `after` (UTC in, UTC out). Missed runs are not
    caught up: a scheduler that was down for two months places one order, not three.

    `period_seconds` > 0 replaces the calendar with a fixed period (tests and demos run a
    "month" in seconds; production leaves it 0)."""
    if period_seconds > 0:
        return after + timedelta(seconds=period_seconds)
    local = after.astimezone(SCHEDULE_ZONE)
    if every == "week":
        candidate = (local + timedelta(days=(day - local.isoweekday()) % 7)).replace(
            hour=hour, minute=0, second=0, microsecond=0
        )
        if candidate <= local:
            candidate += timedelta(days=7)
        return candidate.astimezone(after.tzinfo)
    year, month = local.year, local.month
    for _ in range(2):
        candidate = datetime(year, month, min(day, _days_in(year, month)), hour, tzinfo=SCHEDULE_ZONE)
        if candidate > local:
            return candidate.astimezone(after.tzinfo)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise AssertionError("a month always has a next run")  # pragma: no cover


def _days_in(year: int, month: int) -> int:
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return (following - timedelta(days=1)).day


def run_outcome(status: Status) -> str | None:
    """What a run's order says about the run: `ok` once paid, `failed` when it closed unpaid,
    None while the wallet has not answered yet (the run stays open and is looked at again)."""
    if status in RUN_OK:
        return "ok"
    if status in (S.CANCELLED, S.EXPIRED):
        return "failed"
    return None


# -- expected delivery time (预计到账时间) ----------------------------------------------------

ETA_SAMPLES = 50
"""Recent real deliveries per SKU the observed p90 is taken over."""
ETA_MIN_SAMPLES = 3
"""Fewer deliveries than this say too little: the staff's `eta_seconds` is shown alone."""


def with_delivery_time(
    samples: list[float], orders: list[str], order_id: str, seconds: float
) -> tuple[list[float], list[str]] | None:
    """A SKU's latest `ETA_SAMPLES` delivery times (and their orders) with this order's added;
    None when the order's time is already among them (a redelivered event)."""
    if order_id in orders:
        return None
    return [*samples, seconds][-ETA_SAMPLES:], [*orders, order_id][-ETA_SAMPLES:]


def p90(samples: list[float]) -> int | None:
    """The 90th percentile (nearest rank) of delivery times in seconds, rounded up; None when
    there are too few to say."""
    if len(samples) < ETA_MIN_SAMPLES:
        return None
    ordered = sorted(samples)
    rank = max(1, -(-9 * len(ordered) // 10))  # ceil(0.9 n)
    return int(-(-ordered[rank - 1] // 1))


def order_eta_seconds(staff_eta: int | None, observed: int | None) -> int | None:
    """What an order promises: what recent deliveries of the SKU show when there are enough,
    else what staff set; None when neither is known."""
    return observed if observed is not None else staff_eta


def eta_at(order: Mapping[str, object]) -> datetime | None:
    """When the order is expected to be delivered: its ETA after payment (after placing while
    unpaid); None without an ETA."""
    seconds = order.get("eta_seconds")
    start = order.get("paid_at") or order.get("created_at")
    if not isinstance(seconds, int) or not isinstance(start, datetime):
        return None
    return start + timedelta(seconds=seconds)


def may_urge_after_eta(
    status: Status, due: datetime | None, last_urged_at: datetime | None, now: datetime, wait_minutes: float
) -> str | None:
    """催单 with an ETA: allowed once a paid, undelivered order is past its expected delivery
    time (then once per wait period); None when the buyer may urge now, else why not."""
    if status not in (S.PAID, S.DELIVERING) or due is None:
        return "only paid orders that are not delivered yet can be urged"
    if now < due:
        return f"expected by {due.isoformat(timespec='seconds')}; you can urge once that has passed"
    if last_urged_at is not None and now - last_urged_at < timedelta(minutes=wait_minutes):
        return f"you can urge again {wait_minutes:g} minutes after the last urge"
    return None
