"""Pure catalog rules: which price a caller pays, which stock state a buyer sees, what makes a SKU
definition valid, and what a SKU's `catalog.sku-changed` event holds. No I/O. The pricing
functions take anything with `prices` and `wholesale` (the event included).

What a buyer types for a SKU's recipient fields is checked by the one shared rule,
`shared.recipients.validate_recipient` (the order service's quotes); the catalog checks only the
field definitions themselves (`recipient_field_problems`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

import msgspec

from shared import pricing
from shared.auth import LEVELS
from shared.contracts.catalog import ProductChanged, RecipientField, SkuChanged, WholesaleTier
from shared.recipients import FieldRule

StockState = Literal["in_stock", "low", "out_of_stock"]
Problems = list[dict[str, str]]

MAX_PATTERN_LENGTH = 200


class Tier(Protocol):
    @property
    def min_quantity(self) -> int: ...
    @property
    def price_cents(self) -> int: ...


class Priced(Protocol):
    @property
    def prices(self) -> Mapping[str, int]: ...
    @property
    def wholesale(self) -> Sequence[Tier]: ...


class SkuDefinition(Protocol):
    """What an admin defines for a SKU (the create body, or a patch merged onto the stored SKU)."""

    @property
    def prices(self) -> Mapping[str, int]: ...
    @property
    def wholesale(self) -> Sequence[Tier]: ...
    @property
    def delivery_mode(self) -> str: ...
    @property
    def recipient_fields(self) -> Sequence[FieldRule]: ...
    @property
    def max_per_order(self) -> int | None: ...
    @property
    def max_per_user(self) -> int | None: ...
    @property
    def key_mode(self) -> str: ...
    @property
    def trial(self) -> bool: ...


def normalise_level(level: str | None) -> str:
    """Unknown or missing levels (anonymous buyers, a level added later) price as retail."""
    return level if level in LEVELS else "retail"


def level_price(prices: Mapping[str, int], level: str | None) -> int:
    """The unit price of a member level: `shared.pricing`, the one rule the order service charges
    by. A level without its own price gets the best price of the levels above it in the chain
    (retail → vip → agent → wholesale), so a reseller never falls back to retail; with the chain
    validated non-increasing (`price_problems`) that is the nearest level above."""
    return pricing.level_price(prices, normalise_level(level))


def unit_price(sku: Priced, level: str | None, quantity: int = 1) -> int:
    """What one unit costs this caller at this quantity: the cheaper of the level price and the
    wholesale tier the quantity reaches (tiers never make a caller pay more than their level)."""
    return pricing.unit_price(sku.prices, sku.wholesale, normalise_level(level), quantity)


def visible_tiers(sku: Priced, level: str | None) -> list[tuple[int, int]]:
    """The tiers worth showing this caller: (min_quantity, price) cheaper than their level price."""
    base = level_price(sku.prices, level)
    return sorted((t.min_quantity, t.price_cents) for t in sku.wholesale if t.price_cents < base)


def stock_state(sellable: int, delivery_mode: str, low_threshold: int, key_mode: str = "single") -> StockState:
    """Card-key SKUs show what the vault can still sell; direct top-ups, manual orders and
    reusable keys (one key for every buyer) have no stock of their own to run out of."""
    if delivery_mode != "auto" or key_mode == "reusable":
        return "in_stock"
    if sellable <= 0:
        return "out_of_stock"
    return "low" if sellable <= low_threshold else "in_stock"


# -- validation of what an admin defines -----------------------------------------------------------


def price_problems(prices: Mapping[str, int], tiers: Sequence[Tier]) -> Problems:
    problems: Problems = []
    unknown = sorted(set(prices) - set(LEVELS))
    if unknown:
        problems.append({"field": "prices", "message": f"unknown levels {unknown}; levels are {list(LEVELS)}"})
    if "retail" not in prices:
        problems.append({"field": "prices.retail", "message": "the retail price is required"})
        return problems
    for i, level in enumerate(LEVELS[1:], start=1):
        if level in prices and prices[level] > level_price(prices, LEVELS[i - 1]):
            problems.append(
                {"field": f"prices.{level}", "message": f"must not exceed the {LEVELS[i - 1]} price it falls back to"}
            )
    seen: set[int] = set()
    for i, tier in enumerate(tiers):
        if tier.min_quantity in seen:
            problems.append({"field": f"wholesale[{i}].min_quantity", "message": "two tiers for the same quantity"})
        seen.add(tier.min_quantity)
        if tier.price_cents > prices["retail"]:
            problems.append(
                {"field": f"wholesale[{i}].price_cents", "message": "a tier must not cost more than retail"}
            )
    ordered = sorted(tiers, key=lambda t: t.min_quantity)
    for a, b in itertools.pairwise(ordered):
        if b.price_cents > a.price_cents:
            problems.append(
                {
                    "field": "wholesale",
                    "message": f"buying {b.min_quantity} must not cost more per unit than {a.min_quantity}",
                }
            )
    return problems


_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def recipient_field_problems(fields: Sequence[FieldRule]) -> Problems:
    problems: Problems = []
    names: set[str] = set()
    for i, f in enumerate(fields):
        where = f"recipient_fields[{i}]"
        if not _FIELD_NAME.match(f.name):
            problems.append({"field": f"{where}.name", "message": "lower-case letters, digits and _ (e.g. mobile)"})
        if f.name in names:
            problems.append({"field": f"{where}.name", "message": f"{f.name!r} is defined twice"})
        names.add(f.name)
        if f.pattern is not None:
            if len(f.pattern) > MAX_PATTERN_LENGTH:
                problems.append({"field": f"{where}.pattern", "message": f"at most {MAX_PATTERN_LENGTH} characters"})
            else:
                try:
                    re.compile(f.pattern)
                except re.error as exc:
                    problems.append({"field": f"{where}.pattern", "message": f"not a regular expression: {exc}"})
        if f.min_length is not None and f.max_length is not None and f.min_length > f.max_length:
            problems.append({"field": f"{where}.min_length", "message": "greater than max_length"})
    return problems


def sku_problems(sku: SkuDefinition) -> Problems:
    """Everything wrong with a SKU definition (empty when it may be stored): its price chain and
    tiers, its recipient field definitions, and the rules that tie fields together."""
    problems = price_problems(sku.prices, sku.wholesale) + recipient_field_problems(sku.recipient_fields)
    if sku.delivery_mode == "direct" and not sku.recipient_fields:
        problems.append({"field": "recipient_fields", "message": "a direct top-up needs the recipient (e.g. mobile)"})
    if sku.max_per_order and sku.max_per_user and sku.max_per_order > sku.max_per_user:
        problems.append({"field": "max_per_order", "message": "greater than max_per_user"})
    if sku.key_mode == "reusable" and sku.delivery_mode != "auto":
        problems.append(
            {"field": "key_mode", "message": "reusable keys are delivered automatically (delivery_mode auto)"}
        )
    if sku.trial and any(sku.prices.values()):
        problems.append({"field": "prices", "message": "a trial (免费体验) is free: every price must be 0"})
    return problems


# -- what the catalog tells the others -------------------------------------------------------------

Doc = Mapping[str, Any]


class SkuPrices(msgspec.Struct, frozen=True):
    """The priced part of a stored SKU (a `Priced`)."""

    prices: dict[str, int]
    wholesale: list[WholesaleTier]

    @classmethod
    def of(cls, sku: Doc) -> SkuPrices:
        return cls(dict(sku["prices"]), [WholesaleTier(**t) for t in sku.get("wholesale", [])])


def sku_changed(sku: Doc, product: Doc, category: Doc) -> SkuChanged:
    """The `catalog.sku-changed` event of a stored SKU under its product and category: the whole
    sellable state, so a projection needs nothing else."""
    return SkuChanged(
        sku_id=sku["_id"],
        revision=sku["revision"],
        name=sku["name"],
        product_id=product["_id"],
        product_name=product["name"],
        category_id=category["_id"],
        category_name=category["name"],
        scenario_id=category["scenario_id"],
        face_value_cents=sku["face_value_cents"],
        prices=dict(sku["prices"]),
        wholesale=[WholesaleTier(**t) for t in sku.get("wholesale", [])],
        delivery_mode=sku["delivery_mode"],
        recipient_fields=[msgspec.convert(f, RecipientField) for f in sku.get("recipient_fields", [])],
        validity_days=sku.get("validity_days"),
        max_per_order=sku.get("max_per_order"),
        max_per_user=sku.get("max_per_user"),
        requires_real_name=bool(sku.get("requires_real_name", False)) or bool(sku.get("trial", False)),
        on_sale=bool(sku.get("on_sale", True)),
        key_mode=sku.get("key_mode") or "single",
        trial=bool(sku.get("trial", False)),
        eta_seconds=sku.get("eta_seconds"),
    )


def product_changed(product: Doc) -> ProductChanged:
    """The `catalog.product-changed` event of a stored product: its public fields and listing."""
    return ProductChanged(
        product_id=product["_id"],
        revision=int(product.get("revision", 1)),
        category_id=product["category_id"],
        name=product["name"],
        description=product.get("description", ""),
        service_notes=product.get("service_notes", ""),
        listed=bool(product.get("listed")),
    )
