"""Pricing and catalog validation rules (pure): level fallback, wholesale tiers, stock states."""

from __future__ import annotations

import pytest

from services.catalog import domain
from shared.contracts.catalog import RecipientField, SkuChanged, WholesaleTier
from shared.recipients import validate_recipient


def _sku(prices: dict[str, int], tiers: list[tuple[int, int]] = ()) -> SkuChanged:  # type: ignore[assignment]
    return SkuChanged(
        sku_id="s",
        revision=1,
        name="100 元",
        product_id="p",
        product_name="中国移动",
        category_id="c",
        category_name="话费",
        scenario_id="x",
        face_value_cents=10000,
        prices=prices,
        wholesale=[WholesaleTier(min_quantity=q, price_cents=p) for q, p in tiers],
    )


@pytest.mark.parametrize(
    ("level", "expected"),
    [(None, 9900), ("retail", 9900), ("vip", 9700), ("agent", 9700), ("wholesale", 9400), ("emperor", 9900)],
)
def test_level_price_falls_back_to_the_nearest_level_above(level: str | None, expected: int) -> None:
    assert domain.level_price({"retail": 9900, "vip": 9700, "wholesale": 9400}, level) == expected


def test_only_retail_means_everyone_pays_retail() -> None:
    assert {domain.level_price({"retail": 500}, lv) for lv in ("retail", "vip", "agent", "wholesale")} == {500}


def test_tiers_apply_by_quantity_and_never_raise_the_price() -> None:
    sku = _sku({"retail": 1000, "vip": 900, "agent": 800}, [(10, 950), (100, 850)])
    assert domain.unit_price(sku, "retail", 1) == 1000
    assert domain.unit_price(sku, "retail", 10) == 950
    assert domain.unit_price(sku, "retail", 99) == 950
    assert domain.unit_price(sku, "retail", 100) == 850
    assert domain.unit_price(sku, "vip", 10) == 900  # the vip price beats the tier
    assert domain.unit_price(sku, "agent", 500) == 800
    assert domain.visible_tiers(sku, "vip") == [(100, 850)]
    assert domain.visible_tiers(sku, "agent") == []


@pytest.mark.parametrize(
    ("sellable", "mode", "state"),
    [
        (0, "auto", "out_of_stock"),
        (-3, "auto", "out_of_stock"),
        (1, "auto", "low"),
        (10, "auto", "low"),
        (11, "auto", "in_stock"),
        (0, "direct", "in_stock"),
        (0, "manual", "in_stock"),
    ],
)
def test_stock_state(sellable: int, mode: str, state: str) -> None:
    assert domain.stock_state(sellable, mode, 10) == state


def test_price_problems() -> None:
    assert domain.price_problems({"retail": 100, "vip": 90}, [WholesaleTier(min_quantity=10, price_cents=80)]) == []
    fields = lambda prices, tiers=(): [p["field"] for p in domain.price_problems(prices, tiers)]  # noqa: E731
    assert fields({"vip": 1}) == ["prices.retail"]
    assert fields({"retail": 100, "vip": 120}) == ["prices.vip"]
    assert fields({"retail": 100, "agent": 90, "wholesale": 95}) == ["prices.wholesale"]
    assert fields({"retail": 100, "gold": 1}) == ["prices"]
    tiers = [WholesaleTier(min_quantity=10, price_cents=90), WholesaleTier(min_quantity=20, price_cents=95)]
    assert fields({"retail": 100}, tiers) == ["wholesale"]
    assert fields({"retail": 100}, [WholesaleTier(min_quantity=5, price_cents=101)]) == ["wholesale[0].price_cents"]


def test_recipient_rules() -> None:
    mobile = RecipientField(name="mobile", label="手机号", pattern=r"1[3-9]\d{9}")
    game = RecipientField(name="game_id", label="游戏账号", required=False, min_length=4, max_length=12)
    assert domain.recipient_field_problems([mobile, game]) == []
    assert [p["field"] for p in domain.recipient_field_problems([mobile, mobile])] == ["recipient_fields[1].name"]
    bad = RecipientField(name="Mobile", label="x", pattern="(")
    assert len(domain.recipient_field_problems([bad])) == 2


def test_recipient_values_follow_the_shared_rule() -> None:
    """What a buyer types is checked by `shared.recipients` (the catalog's copy is gone)."""
    mobile = RecipientField(name="mobile", label="手机号", pattern=r"1[3-9]\d{9}")
    game = RecipientField(name="game_id", label="游戏账号", required=False, min_length=4, max_length=12)
    assert validate_recipient([mobile, game], {"mobile": "13800138000"})[1] == []
    clean, errors = validate_recipient([mobile, game], {"mobile": " 13800138000 ", "game_id": "abcd"})
    assert errors == [] and clean == {"mobile": "13800138000", "game_id": "abcd"}
    _, errors = validate_recipient([mobile, game], {"mobile": "12345", "game_id": "ab", "x": "1"})
    assert [e.field for e in errors] == ["recipient.x", "recipient.mobile", "recipient.game_id"]
    assert errors[2].message == "游戏账号 must have at least 4 characters"
    assert validate_recipient([mobile], {})[1][0].message == "手机号 is required"
