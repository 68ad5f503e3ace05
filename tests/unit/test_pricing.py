from __future__ import annotations

import pytest

from shared.contracts.catalog import WholesaleTier
from shared.pricing import level_price, unit_price

PRICES = {"retail": 10000, "vip": 9800, "agent": 9500}


@pytest.mark.parametrize(
    ("level", "cents"),
    [("retail", 10000), ("vip", 9800), ("agent", 9500), ("wholesale", 9500), ("unknown", 10000)],
)
def test_level_price_follows_the_chain(level: str, cents: int) -> None:
    # wholesale has no price of its own: it gets the agent price, not retail (the chain holds
    # past the second level).
    assert level_price(PRICES, level) == cents


def test_a_higher_level_never_pays_more() -> None:
    odd = {"retail": 10000, "vip": 10500, "agent": 9900}  # a mistaken vip price above retail
    assert level_price(odd, "vip") == 10000
    assert level_price(odd, "agent") == 9900


def test_wholesale_tiers_lower_the_price_from_their_quantity() -> None:
    tiers = [WholesaleTier(min_quantity=10, price_cents=9600), WholesaleTier(min_quantity=100, price_cents=9000)]
    assert unit_price(PRICES, tiers, "retail", 9) == 10000
    assert unit_price(PRICES, tiers, "retail", 10) == 9600
    assert unit_price(PRICES, tiers, "retail", 100) == 9000
    assert unit_price(PRICES, tiers, "agent", 10) == 9500  # the level price is already lower


def test_retail_is_required() -> None:
    with pytest.raises(ValueError, match="retail"):
        level_price({"vip": 1}, "vip")
