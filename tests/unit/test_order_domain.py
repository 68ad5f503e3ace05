from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.order.domain import (
    ETA_SAMPLES,
    TRANSITIONS,
    Buyer,
    Status,
    can_move,
    may_cancel,
    may_urge,
    quote,
    with_delivery_time,
)
from shared.contracts.catalog import RecipientField, SkuChanged, WholesaleTier
from shared.recipients import carrier_of, validate_recipient

MOBILE_FIELD = RecipientField(name="mobile", label="手机号", pattern=r"1[3-9]\d{9}")
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def sku(**overrides: object) -> SkuChanged:
    base: dict[str, object] = dict(
        sku_id="s1",
        revision=1,
        name="100元",
        product_id="p1",
        product_name="中国移动话费",
        category_id="c1",
        category_name="话费充值",
        scenario_id="sc1",
        face_value_cents=10000,
        prices={"retail": 9900, "vip": 9800, "agent": 9600},
        wholesale=[WholesaleTier(min_quantity=50, price_cents=9500)],
        delivery_mode="auto",
        recipient_fields=[MOBILE_FIELD],
    )
    base.update(overrides)
    return SkuChanged(**base)  # type: ignore[arg-type]


BUYER = Buyer(user_id="u1", level="retail", real_name_verified=False)


def test_every_status_has_a_row_and_terminal_states_stay_put() -> None:
    assert set(TRANSITIONS) == set(Status)
    assert TRANSITIONS[Status.REFUNDED] == frozenset()
    assert not can_move(Status.DELIVERED, Status.PAID)
    assert not can_move(Status.CANCELLED, Status.PAID)  # a cancelled order is never paid again
    assert can_move(Status.EXPIRED, Status.REFUNDING)  # money that arrives late goes back
    assert not can_move(Status.PENDING_PAYMENT, Status.DELIVERED)  # never delivered unpaid


def test_carrier_detection() -> None:
    assert carrier_of("13800138000") == "中国移动"
    assert carrier_of("18612345678") == "中国联通"
    assert carrier_of("18912345678") == "中国电信"
    assert carrier_of("12345678901") is None
    assert carrier_of("1381234567") is None


def test_recipient_validation_names_each_field() -> None:
    clean, errors = validate_recipient([MOBILE_FIELD], {"mobile": " 13800138000 "})
    assert clean == {"mobile": "13800138000"} and errors == []
    _, errors = validate_recipient([MOBILE_FIELD], {})
    assert [e.as_dict() for e in errors] == [{"field": "recipient.mobile", "message": "手机号 is required"}]
    _, errors = validate_recipient([MOBILE_FIELD], {"mobile": "12345", "extra": "x"})
    assert {e.field for e in errors} == {"recipient.mobile", "recipient.extra"}
    game = RecipientField(name="game_id", label="游戏账号", min_length=4, max_length=8)
    assert validate_recipient([game], {"game_id": "abc"})[1][0].message.endswith("at least 4 characters")
    assert validate_recipient([game], {"game_id": "abcdefghi"})[1][0].message.endswith("at most 8 characters")


def test_quote_prices_by_level_and_tier_and_caps_discount() -> None:
    q = quote(sku(), BUYER, 2, {"mobile": "13800138000"})
    assert (q.unit_price_cents, q.subtotal_cents, q.total_cents) == (9900, 19800, 19800)
    assert q.notes == {"mobile.carrier": "中国移动"} and q.errors == []
    assert quote(sku(), Buyer("u", "vip", False), 1, {"mobile": "13800138000"}).unit_price_cents == 9800
    assert quote(sku(), BUYER, 50, {"mobile": "13800138000"}).unit_price_cents == 9500
    capped = quote(sku(), BUYER, 1, {"mobile": "13800138000"}, discount_cents=50000)
    assert capped.discount_cents == 9900 and capped.total_cents == 0


@pytest.mark.parametrize(
    ("overrides", "buyer", "quantity", "field"),
    [
        ({"on_sale": False}, BUYER, 1, "sku_id"),
        ({"max_per_order": 2}, BUYER, 3, "quantity"),
        ({"max_per_user": 5}, Buyer("u1", "retail", False, bought_of_sku=4), 2, "quantity"),
        ({"requires_real_name": True}, BUYER, 1, "recipient"),
        ({}, BUYER, 0, "quantity"),
    ],
)
def test_quote_errors(overrides: dict[str, object], buyer: Buyer, quantity: int, field: str) -> None:
    q = quote(sku(**overrides), buyer, quantity, {"mobile": "13800138000"})
    assert field in {e.field for e in q.errors}


def test_quote_warnings() -> None:
    assert "only 1 left in stock" in quote(sku(), BUYER, 2, {"mobile": "13800138000"}, sellable=1).warnings
    assert "low stock" in quote(sku(), BUYER, 1, {"mobile": "13800138000"}, sellable=5).warnings
    manual = quote(sku(delivery_mode="manual"), BUYER, 1, {"mobile": "13800138000"})
    assert any("staff" in w for w in manual.warnings)


def test_cancel_window_and_states() -> None:
    placed = NOW - timedelta(minutes=10)
    assert may_cancel(Status.PAID, placed, NOW, 30) is None
    assert may_cancel(Status.PENDING_PAYMENT, placed, NOW, 30) is None
    assert "within 30 minutes" in (may_cancel(Status.PAID, NOW - timedelta(minutes=31), NOW, 30) or "")
    assert "delivered" in (may_cancel(Status.DELIVERED, placed, NOW, 30) or "")


def test_urge_needs_a_paid_order_and_a_wait() -> None:
    paid = NOW - timedelta(minutes=20)
    assert may_urge(Status.PAID, paid, None, NOW, 15) is None
    assert may_urge(Status.PAID, NOW - timedelta(minutes=5), None, NOW, 15) is not None
    assert may_urge(Status.DELIVERING, paid, NOW - timedelta(minutes=1), NOW, 15) is not None  # just urged
    assert may_urge(Status.PENDING_PAYMENT, None, None, NOW, 15) is not None


def test_a_delivery_time_is_kept_once_per_order_among_the_latest() -> None:
    samples = [float(i) for i in range(ETA_SAMPLES)]
    orders = [f"o{i}" for i in range(ETA_SAMPLES)]
    kept = with_delivery_time(samples, orders, "new", 99.0)
    assert kept is not None
    assert kept[0][-1] == 99.0 and len(kept[0]) == ETA_SAMPLES and kept[0][0] == 1.0  # oldest dropped
    assert kept[1][-1] == "new" and len(kept[1]) == ETA_SAMPLES
    assert with_delivery_time(samples, orders, "o3", 5.0) is None  # a redelivered delivery
