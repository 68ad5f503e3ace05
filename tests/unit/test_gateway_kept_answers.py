"""What the gateway keeps of the catalog's answers (services/gateway/cache.py, shared/edge_cache.py):
a kept answer is sent only while every fact the catalog declared still reads as it did, only to
callers it was made for, and never for a sub-site, a partner, an error or an undeclared answer."""

from __future__ import annotations

from typing import Any

from services.gateway.cache import KeptAnswers, Lookup, fact_reads, hash_tag
from shared import edge_cache
from shared.edge_cache import HEADER

GEN = "catalog:browse:generation"
SUPPLY = "inv:{s1}:supply"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def declared(facts: list[tuple[str, object]], *, vary_level: bool = False) -> str:
    return edge_cache.declare(facts, vary_level=vary_level)[edge_cache.HEADER]


def keep(kept: KeptAnswers, path: str, level: str | None, body: bytes, header: str, query: str = "") -> None:
    kept.keep(kept.lookup(path, query, b"", level, None), "GET", level, 200, [], body, header)


def read_as_edge(lookup: Lookup, redis: dict[str, Any]) -> list[Any]:
    return [[redis.get(k) for k in c[1:]] if c[0] == "MGET" else redis.get(c[1]) for c in lookup.reads]


def answer(kept: KeptAnswers, path: str, level: str | None, redis: dict[str, Any], query: str = "") -> bytes | None:
    """What the gateway sends for a request, reading the facts from `redis` as the edge would."""
    lookup = kept.lookup(path, query, b"", level, None)
    found = kept.answer(lookup, read_as_edge(lookup, redis), level)
    return found.body if found else None


def test_a_kept_answer_is_sent_while_its_facts_read_the_same_and_not_once_one_moved() -> None:
    kept = KeptAnswers(clock=Clock())
    keep(kept, "catalog/tree", None, b"tree-v6", declared([(GEN, 6)]))
    # Redis replies with bytes; the catalog recorded INCR's int: the same fact.
    assert answer(kept, "catalog/tree", None, {GEN: b"6"}) == b"tree-v6"
    assert answer(kept, "catalog/tree", "vip", {GEN: b"6"}) == b"tree-v6"  # same for every caller
    assert answer(kept, "catalog/tree", None, {GEN: b"7"}) is None  # an admin changed the catalog
    assert answer(kept, "catalog/tree", None, {}) is None  # Redis lost the counter


def test_stock_facts_decide_a_product_page_and_a_missing_counter_is_a_fact_too() -> None:
    kept = KeptAnswers(clock=Clock())
    keep(kept, "catalog/products/p1", None, b"in-stock", declared([(GEN, b"6"), (SUPPLY, b"5")], vary_level=True))
    assert answer(kept, "catalog/products/p1", None, {GEN: b"6", SUPPLY: b"5"}) == b"in-stock"
    assert answer(kept, "catalog/products/p1", None, {GEN: b"6", SUPPLY: b"4"}) is None  # one sold
    keep(kept, "catalog/products/p2", None, b"none-yet", declared([(GEN, b"6"), ("inv:{s2}:supply", None)]))
    assert answer(kept, "catalog/products/p2", None, {GEN: b"6"}) == b"none-yet"
    assert answer(kept, "catalog/products/p2", None, {GEN: b"6", "inv:{s2}:supply": b"3"}) is None  # imported


def test_an_answer_priced_for_a_level_goes_to_that_level_only() -> None:
    kept = KeptAnswers(clock=Clock())
    redis = {GEN: b"6"}
    keep(kept, "catalog/products/p1", "vip", b"vip-prices", declared([(GEN, 6)], vary_level=True))
    assert answer(kept, "catalog/products/p1", "vip", redis) == b"vip-prices"
    assert answer(kept, "catalog/products/p1", None, redis) is None
    assert answer(kept, "catalog/products/p1", "retail", redis) is None
    keep(kept, "catalog/products/p1", None, b"retail-prices", declared([(GEN, 6)], vary_level=True))
    assert answer(kept, "catalog/products/p1", None, redis) == b"retail-prices"
    assert answer(kept, "catalog/products/p1", "vip", redis) == b"vip-prices"


def test_a_caller_whose_level_an_admin_changed_is_not_sent_the_old_levels_answer() -> None:
    kept = KeptAnswers(clock=Clock())
    keep(kept, "catalog/products/p1", "vip", b"vip-prices", declared([(GEN, 6)], vary_level=True))
    lookup = kept.lookup("catalog/products/p1", "", b"", "vip", "u1")  # the token still says vip
    assert kept.answer(lookup, [b"6"], "retail") is None  # identity's current claims say retail


def test_query_strings_are_part_of_what_is_kept() -> None:
    kept = KeptAnswers(clock=Clock())
    keep(kept, "catalog/products", None, b"page-1", declared([(GEN, 6)]), query="q=a&page=1")
    assert answer(kept, "catalog/products", None, {GEN: b"6"}, query="q=a&page=1") == b"page-1"
    assert answer(kept, "catalog/products", None, {GEN: b"6"}, query="q=a&page=2") is None


def test_nothing_is_kept_without_a_declaration_for_an_error_or_past_its_age() -> None:
    clock = Clock()
    kept = KeptAnswers(clock=clock, max_age_seconds=30)
    lookup = kept.lookup("catalog/tree", "", b"", None, None)
    kept.keep(lookup, "GET", None, 200, [], b"undeclared", "")
    kept.keep(lookup, "GET", None, 200, [], b"garbled", "{not json")
    kept.keep(lookup, "GET", None, 404, [], b"missing", declared([(GEN, 6)]))
    assert answer(kept, "catalog/tree", None, {GEN: b"6"}) is None
    keep(kept, "catalog/tree", None, b"tree", declared([(GEN, 6)]))
    clock.now += 29
    assert answer(kept, "catalog/tree", None, {GEN: b"6"}) == b"tree"
    clock.now += 1
    assert answer(kept, "catalog/tree", None, {GEN: b"6"}) is None


def test_a_lookup_with_nothing_kept_reads_nothing_and_the_size_is_bounded() -> None:
    kept = KeptAnswers(clock=Clock(), max_entries=2)
    nothing = kept.lookup("catalog/tree", "", b"", None, None)
    assert nothing == Lookup(("catalog/tree", "", "")) and nothing.reads == ()
    for q in ("q=1", "q=2", "q=3"):
        keep(kept, "catalog/products", None, q.encode(), declared([(GEN, 6)]), query=q)
    assert answer(kept, "catalog/products", None, {GEN: b"6"}, query="q=1") is None  # the oldest went
    assert answer(kept, "catalog/products", None, {GEN: b"6"}, query="q=3") == b"q=3"


def test_only_plain_catalog_reads_and_placing_an_order_are_candidates() -> None:
    kept = KeptAnswers()
    assert kept.candidate("GET", "catalog", "catalog/tree", {})
    assert kept.candidate("POST", "order", "orders", {})  # for its refusals
    assert not kept.candidate("POST", "catalog", "catalog/tree", {})
    assert not kept.candidate("GET", "order", "orders", {})
    assert not kept.candidate("POST", "order", "orders/quote", {})
    assert not kept.candidate("GET", "catalog", "catalog/tree", {"X-Kameng-Site": "shop1"})  # the site's prices
    assert not kept.candidate("POST", "order", "orders", {"X-Kameng-Site": "shop1"})
    assert not kept.candidate("GET", "catalog", "catalog/tree", {"x-api-key": "k1"})  # signed per request


HELD = "inv:{s1}:held"
ORDER = b'{"sku_id":"s1","quantity":1,"recipient":{}}'


def refuse(kept: KeptAnswers, body: bytes, user: str, header: str, status: int = 409) -> None:
    lookup = kept.lookup("orders", "", body, "retail", user)
    kept.keep(lookup, "POST", "retail", status, [], b"sold-out:" + user.encode(), header)


def placed(kept: KeptAnswers, body: bytes, user: str, redis: dict[str, Any]) -> bytes | None:
    lookup = kept.lookup("orders", "", body, "retail", user)
    found = kept.answer(lookup, read_as_edge(lookup, redis), "retail")
    return found.body if found else None


def test_a_sold_out_refusal_is_sent_again_for_the_same_body_while_the_counters_read_the_same() -> None:
    kept = KeptAnswers(clock=Clock())
    refuse(kept, ORDER, "u1", declared([(HELD, b"3"), (SUPPLY, b"3")]))
    counters = {HELD: b"3", SUPPLY: b"3"}
    assert placed(kept, ORDER, "u1", counters) == b"sold-out:u1"
    assert placed(kept, ORDER, "u2", counters) == b"sold-out:u1"  # no rule about the buyer came first
    assert placed(kept, ORDER, "u1", {HELD: b"2", SUPPLY: b"3"}) is None  # an order let go of its hold
    assert placed(kept, ORDER, "u1", {HELD: b"3", SUPPLY: b"8"}) is None  # keys were imported
    two = b'{"sku_id":"s1","quantity":2,"recipient":{}}'
    assert placed(kept, two, "u1", counters) is None  # another request: another answer


def test_a_refusal_after_rules_about_the_buyer_is_theirs_alone_and_short_lived() -> None:
    clock = Clock()
    kept = KeptAnswers(clock=clock)
    refuse(kept, ORDER, "u1", edge_cache.declare([(SUPPLY, None)], vary_caller=True, max_age_seconds=1.0)[HEADER])
    assert placed(kept, ORDER, "u1", {}) == b"sold-out:u1"
    assert placed(kept, ORDER, "u2", {}) is None
    clock.now += 1
    assert placed(kept, ORDER, "u1", {}) is None  # the order service's copy of the SKU may have moved


def test_an_order_that_was_made_is_never_kept() -> None:
    kept = KeptAnswers(clock=Clock())
    facts = declared([(SUPPLY, b"3")])
    for status in (200, 201, 202, 429, 503):
        refuse(kept, ORDER, "u1", facts, status=status)
        assert placed(kept, ORDER, "u1", {SUPPLY: b"3"}) is None, status


def test_a_skus_counters_are_read_with_one_mget_and_other_keys_one_by_one() -> None:
    held = "inv:{s1}:held"
    assert hash_tag(SUPPLY) == "s1" and hash_tag(GEN) is None and hash_tag("a{}b") is None
    assert fact_reads([GEN, SUPPLY, held, "inv:{s2}:supply"]) == (
        ("GET", GEN),
        ("MGET", SUPPLY, held),
        ("GET", "inv:{s2}:supply"),
    )
    kept = KeptAnswers(clock=Clock())
    facts = [(GEN, b"6"), (SUPPLY, b"5"), (held, None)]
    keep(kept, "catalog/products/p1", None, b"page", declared(facts, vary_level=True))
    assert answer(kept, "catalog/products/p1", None, {GEN: b"6", SUPPLY: b"5"}) == b"page"
    assert answer(kept, "catalog/products/p1", None, {GEN: b"6", SUPPLY: b"5", held: b"1"}) is None
