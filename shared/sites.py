"""Agents' sub-sites (分站): the one place for what a sub-site is called and what it charges.

The catalog shows these prices and checks an agent's settings with them; the order service
charges them and stamps the agent's cost on the order, so what a sub-site's buyer sees is what
they pay, and the agent's commission (sale price − agent cost) is fixed when the order is placed.

The agent's cost is the SKU's `agent` level price (`shared.pricing.level_price`): what the agent
would pay buying on the main site. A sub-site's price is the agent's own price for the SKU if set,
else the cost marked up by `markup_percent` (rounded up to the cent), and never below the cost
(an admin who raises the agent price later makes the site sell at cost, never at a loss).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from shared.pricing import level_price

SITE_HEADER = "X-Kameng-Site"
"""The request header naming the sub-site a request is made on (the web's /s/{slug}/ sets it)."""

MAX_MARKUP_PERCENT = 1000
MAX_SITE_PRICES = 500

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,30}[a-z0-9])")
RESERVED_SLUGS = frozenset({"admin", "api", "www", "static", "assets", "kameng", "main", "health"})


def slug_problem(slug: str) -> str | None:
    """Why `slug` cannot name a sub-site (None when it can): 3-32 of a-z, 0-9 and inner '-'."""
    if not _SLUG.fullmatch(slug):
        return "3 to 32 characters: lowercase letters, digits and '-' (not at either end)"
    if slug in RESERVED_SLUGS:
        return "this name is reserved"
    return None


def normalise_slug(value: str | None) -> str | None:
    """The slug a request header names, or None when absent or not a valid slug."""
    if not value:
        return None
    slug = value.strip().lower()
    return slug if slug_problem(slug) is None else None


def agent_cost(prices: Mapping[str, int]) -> int:
    """What the agent pays the platform for one unit: the SKU's agent-level price."""
    return level_price(prices, "agent")


def site_price(prices: Mapping[str, int], markup_percent: int, own_price: int | None = None) -> int:
    """The unit price on a sub-site: the agent's own price, else cost + markup (rounded up);
    never below the agent's cost."""
    cost = agent_cost(prices)
    marked_up = -(-cost * (100 + markup_percent) // 100)
    return max(cost, own_price if own_price is not None else marked_up)
