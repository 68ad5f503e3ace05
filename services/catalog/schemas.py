"""Request and response structs of the catalog's HTTP API (msgspec), and the 422 shape of a body
that only becomes checkable once merged onto what is stored (a PATCH)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec

from services.catalog.domain import StockState
from shared.contracts.catalog import DeliveryMode
from shared.errors import validation_problem
from shared.limits import Quantity
from shared.money import Cents
from shared.strict_bodies import documented

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Text = Annotated[str, msgspec.Meta(max_length=5000)]

S = TypeVar("S")


def convert(data: Any, model: type[S]) -> S:
    """msgspec validation with the problem+json shape of a 422."""
    try:
        return msgspec.convert(data, model)
    except msgspec.ValidationError as exc:
        message = str(exc)
        field = message.rsplit("at `$.", 1)[1].rstrip("`") if "at `$." in message else "body"
        raise validation_problem([{"field": field, "message": message.split(" - at ")[0]}]) from exc


# -- request bodies -------------------------------------------------------------------------------


class ScenarioIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name


class CategoryIn(msgspec.Struct, forbid_unknown_fields=True):
    scenario_id: str
    name: Name


class ProductIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    category_id: str
    name: Name
    description: Text = ""
    service_notes: Text = ""


class TierIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    min_quantity: Annotated[int, msgspec.Meta(ge=2, le=100_000)]
    price_cents: Cents


class RecipientFieldIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    label: Name
    required: bool = True
    pattern: str | None = None
    min_length: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None
    max_length: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None


class SkuIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    face_value_cents: Cents
    prices: dict[str, Cents]
    wholesale: Annotated[list[TierIn], msgspec.Meta(max_length=20)] = []
    delivery_mode: DeliveryMode
    recipient_fields: Annotated[list[RecipientFieldIn], msgspec.Meta(max_length=10)] = []
    validity_days: Annotated[int, msgspec.Meta(ge=1, le=36500)] | None = None
    max_per_order: Quantity | None = None
    max_per_user: Quantity | None = None
    requires_real_name: bool = False
    on_sale: bool = True
    key_mode: Literal["single", "reusable"] = "single"
    """`reusable` (循环卡密): one key delivered to every buyer, never sold out while on sale."""
    trial: bool = False
    """免费体验: price 0, one per verified person (real name required)."""
    eta_seconds: Annotated[int, msgspec.Meta(ge=1, le=30 * 86400)] | None = None
    """The expected delivery time staff promise buyers (预计到账时间)."""


class ShortcutIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    kind: Literal["category", "product"]
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class ShortcutsIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    shortcuts: Annotated[
        list[ShortcutIn],
        msgspec.Meta(max_length=12, description="at most 12, in order"),
        documented(unique_items=True),  # "pinned twice" is the use case's word for it
    ]


# -- responses ------------------------------------------------------------------------------------


class Shortcut(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    id: str
    title: str


class Shortcuts(msgspec.Struct, frozen=True, kw_only=True):
    shortcuts: list[Shortcut]


class TierOut(msgspec.Struct, frozen=True):
    min_quantity: int
    price_cents: int


class SkuOut(msgspec.Struct, frozen=True, kw_only=True):
    sku_id: str
    name: str
    face_value_cents: int
    price_cents: int
    """Unit price for the caller's member level (retail when anonymous)."""
    wholesale: list[TierOut]
    delivery_mode: DeliveryMode
    recipient_fields: list[RecipientFieldIn]
    validity_days: int | None
    max_per_order: int | None
    max_per_user: int | None
    requires_real_name: bool
    stock: StockState
    key_mode: str = "single"
    trial: bool = False
    eta_seconds: int | None = None
    eta_observed_seconds: int | None = None
    """p90 of this SKU's recent real deliveries (paid → delivered); null until there are some."""


class ProductOut(msgspec.Struct, frozen=True, kw_only=True):
    product_id: str
    name: str
    description: str
    service_notes: str
    category_id: str
    category_name: str
    scenario_id: str
    scenario_name: str
    level: str
    """The member level the prices are for."""
    skus: list[SkuOut]


class ProductSummary(msgspec.Struct, frozen=True, kw_only=True):
    product_id: str
    name: str
    category_id: str
    description: str
    sku_names: list[str]


class TreeProduct(msgspec.Struct, frozen=True):
    product_id: str
    name: str


class TreeCategory(msgspec.Struct, frozen=True):
    category_id: str
    name: str
    products: list[TreeProduct]


class TreeScenario(msgspec.Struct, frozen=True):
    scenario_id: str
    name: str
    categories: list[TreeCategory]


class Tree(msgspec.Struct, frozen=True):
    scenarios: list[TreeScenario]


class AdminSku(SkuIn, kw_only=True):
    sku_id: str
    product_id: str
    revision: int


class AdminProduct(msgspec.Struct, frozen=True, kw_only=True):
    product_id: str
    category_id: str
    name: str
    description: str
    service_notes: str
    listed: bool
    skus: list[AdminSku]
