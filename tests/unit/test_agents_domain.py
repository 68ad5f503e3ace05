"""Agents and sub-sites: the site price rule (`shared/sites.py`) and the wallet's movements of an
agent's money (`services/wallet/domain.py`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.catalog.sites import SiteIn, price_problems
from services.gateway.public import is_public
from services.gateway.routes import owner_of
from services.order.domain import Quote, at_unit_price
from services.support.domain import partner_event
from services.wallet.domain import (
    AGENT_MOVEMENTS,
    COMMISSION,
    PLATFORM_COMMISSIONS,
    PLATFORM_PAYOUTS,
    CommissionStatus,
    agent_postings,
    balance_inc,
)
from shared import sites
from shared.contracts.envelope import utcnow
from shared.contracts.order import OrderStatusChanged

PRICES = {"retail": 1000, "vip": 900, "agent": 733}


def test_the_agent_cost_is_the_agent_level_price_or_the_best_above_it() -> None:
    assert sites.agent_cost(PRICES) == 733
    assert sites.agent_cost({"retail": 1000, "vip": 900}) == 900


@pytest.mark.parametrize(
    ("markup", "own", "expected"),
    [(0, None, 733), (20, None, 880), (30, None, 953), (20, 911, 911), (20, 500, 733)],
)
def test_a_site_price_is_the_own_price_or_the_marked_up_cost_never_below_cost(
    markup: int, own: int | None, expected: int
) -> None:
    # 733 * 1.2 = 879.6 -> 880 (rounded up); an own price below the cost sells at cost.
    assert sites.site_price(PRICES, markup, own) == expected


@pytest.mark.parametrize("slug", ["abc", "xiao-wang-2", "a1b"])
def test_good_slugs(slug: str) -> None:
    assert sites.slug_problem(slug) is None
    assert sites.normalise_slug(f" {slug.upper()} ") == slug


@pytest.mark.parametrize("slug", ["ab", "-abc", "abc-", "a b c", "ABC!", "admin", "x" * 33, "商店商店"])
def test_bad_slugs(slug: str) -> None:
    assert sites.slug_problem(slug) is not None
    if slug.lower() == slug:
        assert sites.normalise_slug(slug) is None


def test_a_sub_site_quote_is_at_the_site_price_before_any_coupon() -> None:
    q = Quote(1000, 3, 3000, 0, 3000, {}, {})
    assert at_unit_price(q, 911) == Quote(911, 3, 2733, 0, 2733, {}, {})


def test_every_agent_movement_is_a_balanced_pair_with_keys_once() -> None:
    at = datetime(2026, 11, 30, tzinfo=UTC)
    credit = agent_postings("commission", "o1", "a1", *AGENT_MOVEMENTS["commission"], 178, at=at)
    assert sum(e["amount_cents"] for e in credit) == 0
    assert {e["account"]: e["amount_cents"] for e in credit} == {PLATFORM_COMMISSIONS: -178, "agent:a1:pending": 178}
    assert {e["key"] for e in credit} == {"commission:o1:platform", "commission:o1:to"}
    paid = agent_postings("withdrawal-paid", "w1", "a1", "withdrawing", None, 178, at=at)
    assert {e["account"]: e["amount_cents"] for e in paid} == {"agent:a1:withdrawing": -178, PLATFORM_PAYOUTS: 178}
    reversal = agent_postings("commission-reversal", "o1", "a1", "available", None, 178, at=at)
    assert {e["account"]: e["amount_cents"] for e in reversal} == {
        "agent:a1:available": -178,
        PLATFORM_COMMISSIONS: 178,
    }


def test_balance_changes_match_the_movements() -> None:
    assert balance_inc(None, "pending", 5) == {"pending_cents": 5}
    assert balance_inc("pending", "available", 5) == {"pending_cents": -5, "available_cents": 5}
    assert balance_inc("available", None, 5) == {"available_cents": -5}


def test_a_commission_is_reversed_at_most_once_from_pending_or_available() -> None:
    assert set(COMMISSION.sources(CommissionStatus.REVERSED)) == {"pending", "available"}
    assert set(COMMISSION.sources(CommissionStatus.AVAILABLE)) == {"pending"}


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("agent/application", "identity"),
        ("admin/agent-applications/a1/approve", "identity"),
        ("agent/site", "catalog"),
        ("sites/shop-1", "catalog"),
        ("agent/commissions", "wallet"),
        ("agent/withdrawals", "wallet"),
        ("admin/withdrawals/w1/reject", "wallet"),
        ("agent/orders", "order"),
    ],
)
def test_the_gateway_routes_the_agent_paths_to_their_owners(path: str, service: str) -> None:
    assert owner_of(path) == service


def test_only_a_sites_public_page_answers_anonymous_callers() -> None:
    assert is_public("GET", "sites/shop-1")
    assert not is_public("GET", "agent/site") and not is_public("PUT", "sites/shop-1")


def test_the_partner_feed_carries_the_sub_site_slug_never_the_commission() -> None:
    event = OrderStatusChanged(
        order_id="o1",
        user_id="p1",
        status="delivered",
        previous_status="delivering",
        sku_id="s1",
        quantity=1,
        total_cents=911,
        at=utcnow(),
        partner_key_id="k1",
        site="shop-1",
        agent_id="a1",
        commission_cents=178,
    )
    public = partner_event(event, event_id="e1")
    assert public is not None and public.site == "shop-1"
    assert "commission" not in str(public) and "a1" not in str(public)


def test_own_prices_below_cost_or_of_unknown_skus_are_named_by_field() -> None:
    body = SiteIn(slug="shop-1", title="t", markup_percent=10, prices={"s1": 732, "s2": 733, "nope": 900})
    problems = price_problems(body, {"s1": {"prices": PRICES}, "s2": {"prices": PRICES}})
    assert problems == [
        {"field": "prices.nope", "message": "no such SKU"},
        {"field": "prices.s1", "message": "below your cost for this SKU"},
    ]
