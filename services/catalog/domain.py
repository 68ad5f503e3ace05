"""Pure catalog rules: which price a caller pays, which stock state a buyer sees, and what makes a
SKU definition or a recipient valid. No I/O: the order service imports these for its quotes, on
its projection of `catalog.sku-changed` (any object with `prices` and `wholesale` will do).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

from shared import pricing
from shared.auth import LEVELS

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


class FieldRule(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def required(self) -> bool: ...
    @property
    def pattern(self) -> str | None: ...
    @property
    def min_length(self) -> int | None: ...
    @property
    def max_length(self) -> int | None: ...


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


def stock_state(sellable: int, delivery_mode: str, low_threshold: int) -> StockState:
    """Card-key SKUs show what the vault can still sell; direct top-ups and manual orders have
    no stock of their own to run out of."""
    if delivery_mode != "auto":
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


def recipient_problems(fields: Sequence[FieldRule], recipient: Mapping[str, str]) -> Problems:
    """Check what a buyer entered against the SKU's recipient fields (the order service's quote)."""
    problems: Problems = []
    known = {f.name for f in fields}
    for name in sorted(set(recipient) - known):
        problems.append({"field": f"recipient.{name}", "message": "not asked for by this product"})
    for f in fields:
        value = (recipient.get(f.name) or "").strip()
        where = f"recipient.{f.name}"
        if not value:
            if f.required:
                problems.append({"field": where, "message": f"{f.label} is required"})
            continue
        if f.min_length is not None and len(value) < f.min_length:
            problems.append({"field": where, "message": f"{f.label} needs at least {f.min_length} characters"})
        elif f.max_length is not None and len(value) > f.max_length:
            problems.append({"field": where, "message": f"{f.label} allows at most {f.max_length} characters"})
        elif f.pattern is not None and not re.fullmatch(f.pattern, value):
            problems.append({"field": where, "message": f"{f.label} is not in the expected format"})
    return problems
