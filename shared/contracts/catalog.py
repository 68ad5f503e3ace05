"""Events of the catalog service (topic `catalog.events`).

`catalog.sku-changed` carries the whole sellable state of a SKU with a `revision` that grows by
one per change, so a projection (the order service's) applies it idempotently: keep the highest
revision.

`catalog.product-changed` (keyed by product id) carries a product's public fields, its service
notes (售后说明) included, and whether it is listed (has an on-sale SKU), with the product's own
`revision`: emitted when the product is created or edited, and when its SKUs going on or off sale
list or unlist it.
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
    key_mode: str = "single"
    """`single`: each key sold once; `reusable` (循环卡密): the same key to every buyer, unlimited."""
    trial: bool = False
    """免费体验: free, one per verified person (by real-name fingerprint); implies requires_real_name."""
    eta_seconds: int | None = None
    """Expected delivery time set by staff (预计到账时间)."""


@event("catalog.product-changed", topic=topics.CATALOG, key="product_id")
class ProductChanged(Event, frozen=True, kw_only=True):
    """A product was created or edited, or became listed or unlisted (its first SKU went on sale,
    its last one off): its public fields now. Keep the highest `revision`. Never prices."""

    product_id: str
    revision: int
    category_id: str
    name: str
    description: str = ""
    service_notes: str = ""
    listed: bool
    """Shown to buyers: it has at least one on-sale SKU."""


@event("catalog.site-changed", topic=topics.CATALOG, key="agent_id")
class SiteChanged(Event, frozen=True, kw_only=True):
    """An agent's sub-site (分站) as it is now, one per agent: the order service keeps the highest
    `revision` and prices orders placed on it with `shared.sites.site_price`."""

    agent_id: str
    revision: int
    slug: str
    title: str
    markup_percent: int
    prices: dict[str, int] = {}
    """The agent's own unit prices by SKU id (cents); SKUs not named are priced by the markup."""
