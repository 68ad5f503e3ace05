"""Events of the fulfilment service (topic `fulfilment.events`). Never carries a card key."""

from __future__ import annotations

from datetime import datetime

from shared.contracts import topics
from shared.contracts.catalog import DeliveryMode
from shared.contracts.registry import Event, event


@event("fulfilment.keys-imported", topic=topics.FULFILMENT, key="sku_id")
class KeysImported(Event, frozen=True, kw_only=True):
    sku_id: str
    batch_id: str
    accepted: int
    available: int
    """Available (unsold, enabled) keys of the SKU after this import."""
    duplicates: int = 0
    invalid: int = 0


@event("fulfilment.key-disabled", topic=topics.FULFILMENT, key="sku_id")
class KeyDisabled(Event, frozen=True, kw_only=True):
    """An admin took one available card key out of sale (reported invalid, leaked...). Carries the
    key's id, never the key."""

    sku_id: str
    key_id: str


@event("fulfilment.succeeded", topic=topics.FULFILMENT, key="order_id")
class FulfilmentSucceeded(Event, frozen=True, kw_only=True):
    order_id: str
    user_id: str
    delivery_id: str
    quantity: int
    mode: DeliveryMode
    delivered_at: datetime
    sku_id: str | None = None


@event("fulfilment.failed", topic=topics.FULFILMENT, key="order_id")
class FulfilmentFailed(Event, frozen=True, kw_only=True):
    """Final: the order cannot be delivered (keys short, supplier gave up, staff failed it); refund it."""

    order_id: str
    user_id: str
    reason: str
    mode: DeliveryMode


@event("fulfilment.started", topic=topics.FULFILMENT, key="order_id")
class FulfilmentStarted(Event, frozen=True, kw_only=True):
    """A delivery that takes time (direct top-up with a supplier, or staff) has begun."""

    order_id: str
    user_id: str
    mode: DeliveryMode
    estimated_minutes: int | None = None
