"""Which unit price a buyer pays: one rule for the catalog (showing prices) and the order service
(charging them), so what a buyer sees is what a buyer pays.

Member levels form a chain, cheapest last: retail → vip → agent → wholesale. A level without a
price of its own gets the best price of the levels below it (a reseller whose level has no price
never falls back to retail, and a higher level never pays more than a lower one). Wholesale tiers
(minimum quantity → unit price) apply to everyone and only ever lower the price.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

LEVEL_CHAIN = ("retail", "vip", "agent", "wholesale")


class Tier(Protocol):
    @property
    def min_quantity(self) -> int: ...
    @property
    def price_cents(self) -> int: ...


def level_price(prices: Mapping[str, int], level: str) -> int:
    """The unit price for a member level (unknown levels price as retail)."""
    if "retail" not in prices:
        raise ValueError("a SKU always has a retail price")
    rank = LEVEL_CHAIN.index(level) if level in LEVEL_CHAIN else 0
    return min(prices[name] for name in LEVEL_CHAIN[: rank + 1] if name in prices)


def unit_price(prices: Mapping[str, int], tiers: Sequence[Tier], level: str, quantity: int) -> int:
    """Unit price for `quantity` units at `level`: the level price, or a wholesale tier's if lower."""
    price = level_price(prices, level)
    for tier in tiers:
        if quantity >= tier.min_quantity:
            price = min(price, tier.price_cents)
    return price
