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


@event("order.payment-requested", topic=topics.ORDER, key="order_id")
class PaymentRequested(Event, frozen=True, kw_only=True):
    """Debit `amount_cents` from the buyer's balance, once per order (the ledger key is the order id)."""

    order_id: str
    user_id: str
    amount_cents: int
    coupon_code: str | None = None
    sku_id: str
    category_id: str
    description: str = ""


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


@event("order.cancel-requested", topic=topics.ORDER, key="order_id")
class CancelRequested(Event, frozen=True, kw_only=True):
    """The buyer cancelled a paid order. Fulfilment stops the delivery if it has not happened
    (answering `fulfilment.failed` with reason `cancelled`, so the order is refunded) and ignores
    it otherwise (the order is delivered and stays so)."""

    order_id: str
    user_id: str
