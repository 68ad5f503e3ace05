"""Orders placed on an agent's sub-site (分站, header `X-Kameng-Site`): which site, its price,
and what is stamped on the order so the commission never changes after placement.

The site comes from the projection of `catalog.site-changed`; a site the catalog has just saved
may not have reached it yet, so an unknown slug is polled for a moment (as a new SKU is) before
the request is refused. The order keeps `site`, `agent_id`, `agent_cost_cents` (per unit) and
`commission_cents` ((site price − agent cost) × quantity); its events carry site, agent and
commission, never to the buyer: the buyer's views show the site and the price they paid only."""

from __future__ import annotations

import asyncio
from typing import Any

from services.order.deps import OrderDeps
from services.order.sites_store import SiteStore
from shared import sites
from shared.contracts.catalog import SiteChanged, SkuChanged
from shared.errors import unknown_reference
from shared.messaging.outbox import Tx
from shared.paging import Paging

Doc = dict[str, Any]
POLL_SECONDS = 0.1


def store_of(deps: OrderDeps) -> SiteStore:
    return SiteStore(deps.store.db)


async def project_site(tx: Tx, deps: OrderDeps, site: SiteChanged) -> bool:
    return await store_of(deps).upsert(tx, site)


async def site_named(deps: OrderDeps, slug: str | None) -> Doc | None:
    """The sub-site a request names (None when it names none); 422 for one that does not exist."""
    if slug is None or not slug.strip():
        return None
    normal = sites.normalise_slug(slug)
    if normal is not None:
        store = store_of(deps)
        # A site saved a moment ago may not have reached the projection: read it again for a
        # while (as a new SKU is) before saying it does not exist.
        polls = max(1, round(deps.settings.sku_wait_seconds / POLL_SECONDS))
        for poll in range(polls + 1):
            if (found := await store.by_slug(normal)) is not None:
                return found
            if poll < polls:
                await asyncio.sleep(POLL_SECONDS)
    raise unknown_reference([{"field": sites.SITE_HEADER, "message": "no such sub-site"}])


def unit_price_on(site: Doc, sku: SkuChanged) -> int:
    return sites.site_price(sku.prices, int(site["markup_percent"]), site.get("prices", {}).get(sku.sku_id))


def stamp(site: Doc | None, sku: SkuChanged, unit_price_cents: int, quantity: int) -> Doc:
    """The sub-site fields of a new order (empty on the main site)."""
    if site is None:
        return {}
    cost = sites.agent_cost(sku.prices)
    return {
        "site": site["slug"],
        "agent_id": site["_id"],
        "agent_cost_cents": cost,
        "commission_cents": max(unit_price_cents - cost, 0) * quantity,
    }


async def agent_orders(deps: OrderDeps, agent_id: str, paging: Paging) -> tuple[list[Doc], int]:
    return await store_of(deps).agent_orders(agent_id, paging.skip, paging.limit)
