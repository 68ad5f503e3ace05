"""Events of the wallet service (topic `wallet.events`). Payment events are keyed by order id, so
they share the order's partition order with `order.events` consumers; account events by user id."""

from __future__ import annotations

from datetime import datetime

from shared.contracts import topics
from shared.contracts.registry import Event, event


@event("wallet.account-opened", topic=topics.WALLET, key="user_id")
class AccountOpened(Event, frozen=True, kw_only=True):
    user_id: str


@event("wallet.payment-captured", topic=topics.WALLET, key="order_id")
class PaymentCaptured(Event, frozen=True, kw_only=True):
    order_id: str
    user_id: str
    amount_cents: int
    entry_id: str


@event("wallet.payment-declined", topic=topics.WALLET, key="order_id")
class PaymentDeclined(Event, frozen=True, kw_only=True):
    """`reason`: insufficient-balance, no-account, coupon-unavailable, provider-unavailable."""

    order_id: str
    user_id: str
    reason: str
    balance_cents: int | None = None


@event("wallet.payment-pending", topic=topics.WALLET, key="order_id")
class PaymentPending(Event, frozen=True, kw_only=True):
    """A provider payment of an order is registered with the payment provider: the buyer pays at
    `pay_url`. `wallet.payment-captured` follows when the provider's signed notification comes."""

    order_id: str
    user_id: str
    amount_cents: int
    channel: str
    pay_url: str
    provider_trade_no: str


@event("wallet.refund-completed", topic=topics.WALLET, key="order_id")
class RefundCompleted(Event, frozen=True, kw_only=True):
    order_id: str
    user_id: str
    amount_cents: int
    entry_id: str


@event("wallet.topup-succeeded", topic=topics.WALLET, key="user_id")
class TopupSucceeded(Event, frozen=True, kw_only=True):
    topup_id: str
    user_id: str
    amount_cents: int
    points: int = 0
    channel: str = ""


@event("wallet.coupon-defined", topic=topics.WALLET, key="code")
class CouponDefined(Event, frozen=True, kw_only=True):
    """A coupon's rules, whole, on every change (`revision` grows by one): the order service keeps
    a projection to price quotes with `shared.coupons` (the same rule). The wallet stays the authority:
    it holds the coupon on `order.placed` and consumes it with the payment."""

    code: str
    revision: int
    kind: str
    """`fixed` or `percent`."""
    amount_off_cents: int = 0
    percent_off_bp: int = 0
    max_discount_cents: int | None = None
    min_spend_cents: int = 0
    sku_ids: list[str] = []
    category_ids: list[str] = []
    starts_at: datetime | None = None
    expires_at: datetime
    per_user_limit: int = 1
    first_order_only: bool = False
    active: bool = True
    description: str = ""


@event("wallet.coupon-granted", topic=topics.WALLET, key="user_id")
class CouponGranted(Event, frozen=True, kw_only=True):
    """`user_id` received `quantity` more of coupon `code` (`total_granted` so far, never more than
    the coupon's per-user limit)."""

    user_id: str
    code: str
    quantity: int
    total_granted: int
