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


@event("fulfilment.keys-revealed", topic=topics.FULFILMENT, key="order_id")
class KeysRevealed(Event, frozen=True, kw_only=True):
    """The owner saw an order's delivered keys for the first time (later reveals are only in the
    reveal log): the order leaves 待使用 and no expiry reminder is sent. Never the keys."""

    order_id: str
    user_id: str
    revealed_at: datetime


@event("fulfilment.key-expiry-reminder", topic=topics.FULFILMENT, key="order_id")
class KeyExpiryReminder(Event, frozen=True, kw_only=True):
    """订单到期提醒: an order's delivered keys were never revealed and the first of them expires
    at `expires_at`; sent once per order. Never the keys."""

    order_id: str
    user_id: str
    sku_id: str
    expires_at: datetime
