"""The shared pieces every service uses: paging bounds, transition tables, idempotency keys,
the recipient rule and the price format."""

from __future__ import annotations

from enum import StrEnum

import pytest

from shared.errors import Problem
from shared.idempotency import derived_id, fingerprint, idempotency_key, key_reused
from shared.money import format_price
from shared.paging import MAX_PAGE, Paging
from shared.recipients import carrier_of, recipient_notes
from shared.transitions import Transitions


def test_paging_skip_limit_and_in_memory_slice() -> None:
    p = Paging(page=3, page_size=2)
    assert (p.skip, p.limit) == (4, 2)
    page = p.slice(list(range(7)))
    assert page.items == [4, 5] and page.total == 7 and page.page == 3
    assert Paging(page=MAX_PAGE, page_size=200).skip < 2**31  # never a huge skip


class Light(StrEnum):
    RED = "red"
    GREEN = "green"
    AMBER = "amber"
    OFF = "off"


def test_transitions_guard_lists_only_allowed_sources() -> None:
    table = Transitions(
        {Light.RED: {Light.GREEN, Light.OFF}, Light.GREEN: {Light.AMBER}, Light.AMBER: {Light.RED}, Light.OFF: ()}
    )
    assert table.guard(Light.GREEN) == {"status": {"$in": ["red"]}}
    assert table.sources(Light.OFF) == ["red"]
    assert table.can_move(Light.AMBER, Light.RED) and not table.can_move(Light.OFF, Light.RED)
    assert table.final() == {Light.OFF}
    with pytest.raises(ValueError, match="without a row"):
        Transitions({Light.RED: {Light.GREEN}})


def test_idempotency_key_rules_and_one_problem_type() -> None:
    assert idempotency_key(None) is None
    assert idempotency_key("k-1") == "k-1"
    for bad in ("", "x" * 256, "a\nb"):
        with pytest.raises(Problem) as err:
            idempotency_key(bad)
        assert err.value.status_code == 422
    assert key_reused().slug == "idempotency-key-reused"
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint(b"ab", b"c") != fingerprint(b"a", b"bc")
    assert derived_id("order", "u1", "k") == derived_id("order", "u1", "k") != derived_id("order", "u2", "k")


def test_recipient_notes_and_price_format() -> None:
    assert carrier_of("13800138000") == "中国移动" and carrier_of("123") is None
    assert recipient_notes({"mobile": "18912345678", "game_id": "abc"}) == {"mobile.carrier": "中国电信"}
    assert format_price(1250) == "¥12.50" and format_price(-5) == "¥-0.05"
