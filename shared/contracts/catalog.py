"""Events of the catalog service (topic `catalog.events`, keyed by SKU id).

`catalog.sku-changed` carries the whole sellable state of a SKU with a `revision` that grows by
one per change, so a projection (the order service's) applies it idempotently: keep the highest
revision.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from shared.contracts import topics
from shared.contracts.registry import Event, event

DeliveryMode = Literal["auto", "direct", "manual"]


class RecipientField(msgspec.Struct, frozen=True, kw_only=True):
    """One thing the buyer must enter for the order (e.g. a mobile number or a game account id)."""

    name: str
    label: str
    required: bool = True
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None


class WholesaleTier(msgspec.Struct, frozen=True, kw_only=True):
    min_quantity: int
    price_cents: int


@event("catalog.sku-changed", topic=topics.CATALOG, key="sku_id")
class SkuChanged(Event, frozen=True, kw_only=True):
    sku_id: str
    revision: int
    name: str
    product_id: str
    product_name: str
    category_id: str
    category_name: str
    scenario_id: str
    face_value_cents: int
    prices: dict[str, int]
    """Unit price in cents per member level; `retail` is always present."""
    wholesale: list[WholesaleTier] = []
    delivery_mode: DeliveryMode = "auto"
    recipient_fields: list[RecipientField] = []
    validity_days: int | None = None
    max_per_order: int | None = None
    max_per_user: int | None = None
    requires_real_name: bool = False
    on_sale: bool = True
