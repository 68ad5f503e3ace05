from __future__ import annotations

import msgspec
import pytest

from shared.money import Cents, MoneyError, allocate, apply_rate, format_yuan, parse_yuan


@pytest.mark.parametrize(("text", "cents"), [("0", 0), ("12.5", 1250), ("12.50", 1250), ("0.01", 1), (" 100 ", 10000)])
def test_parse_yuan(text: str, cents: int) -> None:
    assert parse_yuan(text) == cents


@pytest.mark.parametrize("text", ["", "abc", "-1", "1.001", "NaN", "Infinity"])
def test_parse_yuan_rejects(text: str) -> None:
    with pytest.raises(MoneyError):
        parse_yuan(text)


def test_format_yuan() -> None:
    assert format_yuan(1250) == "12.50"
    assert format_yuan(5) == "0.05"
    assert format_yuan(-5) == "-0.05"


def test_apply_rate_rounds_half_up_to_the_cent() -> None:
    assert apply_rate(999, 9500) == 949  # 949.05
    assert apply_rate(10, 500) == 1  # 0.5 -> 1
    assert apply_rate(10000, 0) == 0
    with pytest.raises(MoneyError):
        apply_rate(100, -1)


@pytest.mark.parametrize(("total", "weights"), [(100, [1, 1, 1]), (1, [5, 5]), (999, [3, 0, 7]), (0, [1, 2])])
def test_allocate_sums_exactly(total: int, weights: list[int]) -> None:
    parts = allocate(total, weights)
    assert sum(parts) == total
    assert all(p >= 0 for p in parts)
    assert parts[weights.index(0)] == 0 if 0 in weights else True


def test_allocate_is_proportional() -> None:
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(1000, [1, 3]) == [250, 750]


def test_cents_schema_rejects_negative_and_float() -> None:
    class Price(msgspec.Struct):
        amount: Cents

    assert msgspec.json.decode(b'{"amount": 5}', type=Price).amount == 5
    for bad in (b'{"amount": -1}', b'{"amount": 1.5}'):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(bad, type=Price)
