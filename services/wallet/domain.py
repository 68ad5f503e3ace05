"""Pure wallet rules: the double-entry builder, the top-up and coupon-hold lifecycles, coupon
eligibility and discounts, points, provider signatures, top-up requests, reports.

No I/O here. The coupon rules themselves (`Coupon`, `coupon_problem`, `discount_cents`) are the
one shared rule in `shared/coupons.py`, used by the order service's quotes too; they are
re-exported here for the wallet's own modules.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import msgspec

from shared.contracts.envelope import new_id
from shared.coupons import (
    BELOW_MINIMUM,
    EXPIRED,
    INACTIVE,
    NOT_APPLICABLE,
    NOT_FIRST_ORDER,
    NOT_STARTED,
    Coupon,
    CouponKind,
    coupon_problem,
    discount_cents,
)

__all__ = [
    "BELOW_MINIMUM",
    "EXPIRED",
    "INACTIVE",
    "NOT_APPLICABLE",
    "NOT_FIRST_ORDER",
    "NOT_STARTED",
    "Coupon",
    "CouponKind",
    "coupon_problem",
    "discount_cents",
]
from shared.idempotency import HEADER, KEY_RULE, valid_key
from shared.transitions import Transitions

# -- the ledger: double entry --------------------------------------------------------------------

PLATFORM_REVENUE = "platform:revenue"
PLATFORM_REFUNDS = "platform:refunds"
PLATFORM_POINTS = "platform:points"


def platform_cash(channel: str) -> str:
    return f"platform:cash:{channel}"


Entry = dict[str, Any]
"""A ledger entry as stored: `_id`, `key`, `txn`, `account`, `amount_cents`, `at`, `kind`, `ref`, ..."""


class Side(msgspec.Struct, frozen=True, kw_only=True):
    """One side of a movement: the account, the key suffix naming the side (`user`, `platform`,
    `cash`), and what this side's entry alone carries (the user's balance after, a description)."""

    name: str
    account: str
    fields: Mapping[str, Any] = msgspec.field(default_factory=dict)


def entry_key(kind: str, ref: str, side: str) -> str:
    """The unique idempotency key of one entry: a movement booked twice fails on it."""
    return f"{kind}:{ref}:{side}"


def postings(
    kind: str,
    ref: str,
    debit: Side,
    credit: Side,
    amount_cents: int,
    *,
    at: datetime,
    txn: str | None = None,
    points: int = 0,
    points_account: str | None = None,
) -> list[Entry]:
    """The entries of one movement of `amount_cents` from `debit` to `credit`: the debit side
    gets `-amount`, the credit side `+amount`, so they sum to zero. With `points_account`, the
    credit side also earns `points` issued by that account (a third entry of 0 cents, key side
    `points`, only when there are points), so points sum to zero too. Every entry carries the
    movement's `txn` and its key `<kind>:<ref>:<side>`."""
    if amount_cents < 0 or points < 0:
        raise ValueError(f"a movement moves a non-negative amount, got {amount_cents} cents, {points} points")
    if points and points_account is None:
        raise ValueError("points need the account that issues them")
    names = [debit.name, credit.name, *(["points"] if points_account is not None else [])]
    if len(set(names)) != len(names):
        raise ValueError(f"the sides of a movement need distinct names, got {names}")
    txn = txn or new_id()

    def entry(side: str, account: str, amount: int, fields: Mapping[str, Any]) -> Entry:
        return {
            "_id": new_id(),
            "key": entry_key(kind, ref, side),
            "txn": txn,
            "account": account,
            "amount_cents": amount,
            "at": at,
            "kind": kind,
            "ref": ref,
            **fields,
        }

    earned = {"points": points} if points_account is not None else {}
    entries = [
        entry(credit.name, credit.account, amount_cents, {**earned, **credit.fields}),
        entry(debit.name, debit.account, -amount_cents, debit.fields),
    ]
    if points_account is not None and points:
        entries.append(entry("points", points_account, 0, {"points": -points}))
    return entries


def payment_postings(
    order_id: str, user_id: str, amount_cents: int, *, at: datetime, user_fields: Mapping[str, Any]
) -> list[Entry]:
    """A captured payment: the user pays the platform's revenue."""
    return postings(
        "payment",
        order_id,
        debit=Side(name="user", account=user_id, fields=user_fields),
        credit=Side(name="platform", account=PLATFORM_REVENUE),
        amount_cents=amount_cents,
        at=at,
    )


def refund_postings(
    order_id: str, user_id: str, amount_cents: int, *, at: datetime, user_fields: Mapping[str, Any]
) -> list[Entry]:
    """A refund: the platform's refunds account gives the money back to the user."""
    return postings(
        "refund",
        order_id,
        debit=Side(name="platform", account=PLATFORM_REFUNDS),
        credit=Side(name="user", account=user_id, fields=user_fields),
        amount_cents=amount_cents,
        at=at,
    )


def topup_postings(
    topup_id: str,
    user_id: str,
    channel: str,
    amount_cents: int,
    points: int,
    *,
    at: datetime,
    user_fields: Mapping[str, Any],
) -> list[Entry]:
    """A credited top-up: the channel's cash account pays the user, who also earns points."""
    return postings(
        "topup",
        topup_id,
        debit=Side(name="cash", account=platform_cash(channel)),
        credit=Side(name="user", account=user_id, fields=user_fields),
        amount_cents=amount_cents,
        at=at,
        points=points,
        points_account=PLATFORM_POINTS,
    )


def user_key(kind: str, ref: str) -> str:
    """The key of a movement's user entry: what tells whether it was booked already."""
    return entry_key(kind, ref, "user")


# -- top-ups --------------------------------------------------------------------------------------


class TopupStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


TOPUP = Transitions(
    {
        TopupStatus.PENDING: {TopupStatus.SUCCEEDED, TopupStatus.FAILED},
        TopupStatus.SUCCEEDED: (),
        TopupStatus.FAILED: (),
    }
)
"""A top-up is credited or fails exactly once: both only from pending (a repeated notification,
a poll racing a notification, staff approving twice all find it no longer pending)."""

PROVIDER_CHANNELS = ("alipay", "wechat")
"""Channels paid through the (simulated) provider; `bank` transfers are approved by staff."""
BANK = "bank"


def topup_request_errors(
    amount_cents: int, channel: str, key: str | None, *, min_cents: int, max_cents: int
) -> list[dict[str, str]]:
    """What is wrong with a top-up request (empty when it may go to the provider)."""
    errors = []
    if not min_cents <= amount_cents <= max_cents:
        errors.append({"field": "amount_cents", "message": f"must be between {min_cents} and {max_cents}"})
    if channel not in (*PROVIDER_CHANNELS, BANK):
        errors.append({"field": "channel", "message": f"one of {', '.join((*PROVIDER_CHANNELS, BANK))}"})
    if key is not None and not valid_key(key):
        errors.append({"field": HEADER, "message": KEY_RULE})
    return errors


ORDER_TRADE_PREFIX = "order-"
"""Provider trade numbers of order payments are `order-<order id>` (top-ups use their own id),
so a notification names which of the two it is about."""


def order_trade_no(order_id: str) -> str:
    return ORDER_TRADE_PREFIX + order_id


def order_of_trade(trade_no: str) -> str | None:
    """The order id a provider trade number stands for, or None for a top-up."""
    return trade_no[len(ORDER_TRADE_PREFIX) :] if trade_no.startswith(ORDER_TRADE_PREFIX) else None


def provider_postings(
    order_id: str, user_id: str, channel: str, amount_cents: int, *, at: datetime, user_fields: Mapping[str, Any]
) -> list[Entry]:
    """Money the buyer paid through the provider for an order: the channel's cash account pays
    the user (the payment of the order then debits it in the same transaction, so the provider's
    money always passes through the balance and is never lost when the order cannot take it)."""
    return postings(
        "provider",
        order_id,
        debit=Side(name="cash", account=platform_cash(channel)),
        credit=Side(name="user", account=user_id, fields=user_fields),
        amount_cents=amount_cents,
        at=at,
    )


MISMATCH_TITLES = {"trade-mismatch": "Trade number mismatch", "amount-mismatch": "Amount mismatch"}
MISMATCH_DETAILS = {
    "trade-mismatch": "the provider trade number does not match the payment",
    "amount-mismatch": "the amount does not match the payment",
}


def provider_mismatch(topup: Mapping[str, Any], fields: Mapping[str, Any]) -> str | None:
    """Why what the provider says cannot be about this top-up (`trade-mismatch`,
    `amount-mismatch`), or None: it must name its provider trade number and its exact amount."""
    if fields.get("provider_trade_no") != topup.get("provider_trade_no"):
        return "trade-mismatch"
    amount = fields.get("amount_cents")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount != topup["amount_cents"]:
        return "amount-mismatch"
    return None


# -- coupons --------------------------------------------------------------------------------------


class HoldStatus(StrEnum):
    HELD = "held"
    CONSUMED = "consumed"
    RELEASED = "released"
    REJECTED = "rejected"


HOLD = Transitions(
    {
        HoldStatus.HELD: {HoldStatus.CONSUMED, HoldStatus.RELEASED},
        # A refunded order gives its coupon back.
        HoldStatus.CONSUMED: {HoldStatus.RELEASED},
        HoldStatus.RELEASED: (),
        HoldStatus.REJECTED: (),
    }
)
"""A coupon held for an order is consumed by its payment or released when the order ends
unpaid or is refunded; a hold the rules refused is stored as rejected and never moves."""


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


# -- agents: commissions and withdrawals (代理佣金 / 提现) ------------------------------------------

PLATFORM_COMMISSIONS = "platform:commissions"
"""What the platform pays its agents (commissions, net of reversals)."""
PLATFORM_PAYOUTS = "platform:payouts"
"""Money paid out of the platform to agents' own accounts (approved withdrawals)."""


def agent_account(agent_id: str, bucket: str) -> str:
    """An agent's ledger account per bucket: apart from the agent's buyer balance (the user id),
    so the buyer ledger still sums to the balance."""
    return f"agent:{agent_id}:{bucket}"


class CommissionStatus(StrEnum):
    PENDING = "pending"
    AVAILABLE = "available"
    REVERSED = "reversed"


COMMISSION = Transitions(
    {
        CommissionStatus.PENDING: {CommissionStatus.AVAILABLE, CommissionStatus.REVERSED},
        CommissionStatus.AVAILABLE: {CommissionStatus.REVERSED},
        CommissionStatus.REVERSED: (),
    }
)
"""A commission is credited pending, becomes available when the after-sales window closes, and
is reversed at most once, from either (a refund before or after the window)."""


class WithdrawalStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    REJECTED = "rejected"


WITHDRAWAL = Transitions(
    {
        WithdrawalStatus.PENDING: {WithdrawalStatus.PAID, WithdrawalStatus.REJECTED},
        WithdrawalStatus.PAID: (),
        WithdrawalStatus.REJECTED: (),
    }
)
"""A withdrawal is paid or rejected exactly once (staff clicking twice find it decided)."""

BUCKET_FIELD = {"pending": "pending_cents", "available": "available_cents", "withdrawing": "withdrawing_cents"}

AGENT_MOVEMENTS: dict[str, tuple[str | None, str | None]] = {
    # kind: (from bucket or None = the platform account, to bucket or None = the platform account)
    "commission": (None, "pending"),
    "commission-release": ("pending", "available"),
    "withdrawal": ("available", "withdrawing"),
    "withdrawal-returned": ("withdrawing", "available"),
}


def agent_postings(
    kind: str, ref: str, agent_id: str, source: str | None, target: str | None, amount_cents: int, *, at: datetime
) -> list[Entry]:
    """The entries of one movement of an agent's money between its buckets (`pending`,
    `available`, `withdrawing`) or to/from a platform account (None: `platform:commissions`,
    or `platform:payouts` for a paid withdrawal). Keys `<kind>:<ref>:<side>`: once each."""
    platform = PLATFORM_PAYOUTS if kind == "withdrawal-paid" else PLATFORM_COMMISSIONS

    def side(bucket: str | None, name: str) -> Side:
        if bucket is None:
            return Side(name="platform", account=platform, fields={"agent_id": agent_id})
        return Side(name=name, account=agent_account(agent_id, bucket), fields={"agent_id": agent_id})

    return postings(kind, ref, debit=side(source, "from"), credit=side(target, "to"), amount_cents=amount_cents, at=at)


def balance_inc(source: str | None, target: str | None, amount_cents: int) -> dict[str, int]:
    """The `$inc` of an agent's balance document for a movement between buckets."""
    inc: dict[str, int] = {}
    if source is not None:
        inc[BUCKET_FIELD[source]] = -amount_cents
    if target is not None:
        inc[BUCKET_FIELD[target]] = inc.get(BUCKET_FIELD[target], 0) + amount_cents
    return inc
