"""Events of the order service (topic `order.events`, keyed by order id).

The specific events drive the saga (payment, fulfilment, refunds); `order.status-changed` is
emitted on every transition, for everyone who follows orders (support's notifications, the
partner feed, reports).
"""

from __future__ import annotations

from datetime import datetime

from shared.contracts import topics
from shared.contracts.catalog import DeliveryMode
from shared.contracts.registry import Event, event


@event("order.placed", topic=topics.ORDER, key="order_id")
class OrderPlaced(Event, frozen=True, kw_only=True):
    order_id: str
    user_id: str
    sku_id: str
    quantity: int
    unit_price_cents: int
    discount_cents: int
    total_cents: int
    coupon_code: str | None = None
    delivery_mode: DeliveryMode
    category_id: str
    expires_at: datetime
    batch_id: str | None = None
    partner_key_id: str | None = None
    site: str | None = None
    """The sub-site (slug) the order was placed on; None on the main site."""


@event("order.payment-requested", topic=topics.ORDER, key="order_id")
class PaymentRequested(Event, frozen=True, kw_only=True):
    """Debit `amount_cents` from the buyer's balance, once per order (the ledger key is the order id).

    `method: provider` (with `channel` alipay | wechat): the buyer pays through the payment
    provider instead; the wallet registers the payment there and answers `wallet.payment-pending`
    with the pay_url, and captures the payment when the provider's signed notification comes.
    `coupon_order_id`: the order whose coupon hold this payment consumes, when it is not
    `order_id` (a batch's one payment carries its coupon on one of its orders)."""

    order_id: str
    user_id: str
    amount_cents: int
    coupon_code: str | None = None
    sku_id: str
    category_id: str
    description: str = ""
    method: str = "balance"
    """`balance` or `provider`."""
    channel: str | None = None
    coupon_order_id: str | None = None


@event("order.paid", topic=topics.ORDER, key="order_id")
class OrderPaid(Event, frozen=True, kw_only=True):
    """Deliver: fulfilment makes exactly one delivery of `quantity` for this order. No card keys here."""

    order_id: str
    user_id: str
    sku_id: str
    quantity: int
    delivery_mode: DeliveryMode
    recipient: dict[str, str]
    validity_days: int | None = None
    partner_key_id: str | None = None
    face_value_cents: int | None = None
    """Per unit: what a direct top-up puts on the recipient's account."""


@event("order.refund-requested", topic=topics.ORDER, key="order_id")
class RefundRequested(Event, frozen=True, kw_only=True):
    """Give `amount_cents` back to the buyer's balance, once per order."""

    order_id: str
    user_id: str
    amount_cents: int
    reason: str


@event("order.urged", topic=topics.ORDER, key="order_id")
class OrderUrged(Event, frozen=True, kw_only=True):
    """The buyer asked to hurry a late order (催单)."""

    order_id: str
    user_id: str
    status: str
    urged_at: datetime


@event("order.status-changed", topic=topics.ORDER, key="order_id")
class OrderStatusChanged(Event, frozen=True, kw_only=True):
    order_id: str
    user_id: str
    status: str
    previous_status: str | None
    sku_id: str
    quantity: int
    total_cents: int
    at: datetime
    reason: str | None = None
    partner_key_id: str | None = None
    site: str | None = None
    """The sub-site (slug) the order was placed on; None on the main site."""
    agent_id: str | None = None
    """The agent who owns that sub-site."""
    commission_cents: int = 0
    """The agent's commission on the order, fixed at placement: (site price − agent cost) ×
    quantity. The wallet credits it on `delivered` and reverses it on `refunded`."""


@event("order.cancel-requested", topic=topics.ORDER, key="order_id")
class CancelRequested(Event, frozen=True, kw_only=True):
    """The buyer cancelled a paid order. Fulfilment stops the delivery if it has not happened
    (answering `fulfilment.failed` with reason `cancelled`, so the order is refunded) and ignores
    it otherwise (the order is delivered and stays so)."""

    order_id: str
    user_id: str


@event("order.subscription-run-failed", topic=topics.ORDER, key="subscription_id")
class SubscriptionRunFailed(Event, frozen=True, kw_only=True):
    """A scheduled order (自动充值) could not be placed or paid on this run: support tells the
    owner (in-app and email). Emitted once per run, in the transaction that records the run; the
    run is not retried, the next one comes at its time."""

    subscription_id: str
    user_id: str
    run: int
    sku_id: str
    quantity: int
    reason: str
    """A problem slug: `insufficient-balance`, `out-of-stock`, `validation-error`, `expired`..."""
    detail: str
    order_id: str | None = None
    next_run_at: datetime


@event("order.delivery-time-observed", topic=topics.ORDER, key="sku_id")
class DeliveryTimeObserved(Event, frozen=True, kw_only=True):
    """The p90 of a SKU's recent real deliveries (paid → delivered) changed (预计到账时间): the
    catalog shows it on the product as `eta_observed_seconds`."""

    sku_id: str
    p90_seconds: int | None
    samples: int
