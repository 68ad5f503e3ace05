"""Agents' sub-sites (分站) in the catalog: an agent's settings (slug, title, markup, own prices),
the public page of a site, and the catalog priced for a site (`X-Kameng-Site`).

The catalog owns sites because it owns the prices a site's rule is checked against: an own price
below the agent's cost is refused here (422, the field named), and every save is announced as
`catalog.site-changed` so the order service charges the same prices (`shared/sites.py`). A
site's buyer gets only site prices: never the agent's cost, never the level prices or tiers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from pymongo.errors import DuplicateKeyError

from services.catalog import usecases
from services.catalog.deps import CatalogDeps
from services.catalog.schemas import ProductOut
from services.catalog.sites_store import SiteStore
from services.catalog.store import Doc
from shared import sites
from shared.contracts.catalog import SiteChanged
from shared.errors import Problem, not_found, validation_problem
from shared.messaging.outbox import Tx

Cents = Annotated[int, msgspec.Meta(ge=0, le=100_000_000)]


class SiteIn(msgspec.Struct, forbid_unknown_fields=True):
    slug: Annotated[str, msgspec.Meta(max_length=64)]
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
    markup_percent: Annotated[int, msgspec.Meta(ge=0, le=sites.MAX_MARKUP_PERCENT)] = 0
    prices: Annotated[dict[str, Cents], msgspec.Meta(max_length=sites.MAX_SITE_PRICES)] = {}


class SiteSku(msgspec.Struct):
    sku_id: str
    name: str
    face_value_cents: int
    price_cents: int
    delivery_mode: str


class SiteProduct(msgspec.Struct):
    product_id: str
    name: str
    category_id: str
    skus: list[SiteSku]


class PublicSite(msgspec.Struct):
    """What anyone sees of a site: never the agent's cost."""

    slug: str
    title: str
    products: list[SiteProduct]


class AgentSku(msgspec.Struct):
    sku_id: str
    name: str
    cost_cents: int
    price_cents: int


class AgentSite(msgspec.Struct):
    """The agent's own view: its settings, and its cost and price per SKU."""

    slug: str
    title: str
    markup_percent: int
    prices: dict[str, int]
    revision: int
    skus: list[AgentSku]


def _store(deps: CatalogDeps) -> SiteStore:
    return SiteStore(deps.store.db)


def price_problems(body: SiteIn, skus: dict[str, Doc]) -> list[dict[str, str]]:
    """Every own price naming no SKU or below the agent's cost, field `prices.<sku_id>`."""
    problems = []
    for sku_id, cents in sorted(body.prices.items()):
        sku = skus.get(sku_id)
        if sku is None:
            problems.append({"field": f"prices.{sku_id}", "message": "no such SKU"})
        elif cents < sites.agent_cost(sku["prices"]):
            problems.append({"field": f"prices.{sku_id}", "message": "below your cost for this SKU"})
    return problems


async def save_site(deps: CatalogDeps, agent_id: str, body: SiteIn) -> AgentSite:
    """Create or change the agent's site: 422 for a bad slug or an own price below cost, 409
    when another agent has the slug."""
    slug = body.slug.strip().lower()
    errors = [{"field": "slug", "message": problem}] if (problem := sites.slug_problem(slug)) else []
    store = _store(deps)

    async def write(tx: Tx) -> Doc:
        found = errors + price_problems(body, await store.skus(list(body.prices), tx))
        if found:
            raise validation_problem(found, "the site settings are not valid")
        doc = await store.save(
            tx,
            agent_id,
            {
                "slug": slug,
                "title": body.title.strip(),
                "markup_percent": body.markup_percent,
                "prices": dict(body.prices),
                "updated_at": datetime.now(UTC),
            },
        )
        tx.emit(
            SiteChanged(
                agent_id=agent_id,
                revision=int(doc["revision"]),
                slug=doc["slug"],
                title=doc["title"],
                markup_percent=doc["markup_percent"],
                prices=doc["prices"],
            )
        )
        return doc

    try:
        doc = await deps.uow.run(write)
    except DuplicateKeyError as exc:
        raise Problem(
            409,
            "slug-taken",
            "Slug taken",
            f"the sub-site name {slug!r} belongs to another agent",
            errors=[{"field": "slug", "message": "taken"}],
        ) from exc
    return await _agent_view(deps, doc)


async def agent_site(deps: CatalogDeps, agent_id: str) -> AgentSite:
    doc = await _store(deps).of_agent(agent_id)
    if doc is None:
        raise not_found("site")
    return await _agent_view(deps, doc)


async def _agent_view(deps: CatalogDeps, doc: Doc) -> AgentSite:
    _, skus = await _store(deps).on_sale_range()
    own = doc.get("prices", {})
    return AgentSite(
        slug=doc["slug"],
        title=doc["title"],
        markup_percent=doc["markup_percent"],
        prices=own,
        revision=int(doc["revision"]),
        skus=[
            AgentSku(
                sku_id=s["_id"],
                name=s["name"],
                cost_cents=sites.agent_cost(s["prices"]),
                price_cents=sites.site_price(s["prices"], doc["markup_percent"], own.get(s["_id"])),
            )
            for s in skus
        ],
    )


async def site_by_slug(deps: CatalogDeps, slug: str) -> Doc:
    doc = await _store(deps).by_slug(slug.strip().lower())
    if doc is None:
        raise not_found("site")
    return doc


async def public_site(deps: CatalogDeps, slug: str) -> PublicSite:
    """A site's page: its title and every listed product's on-sale SKUs at the site's prices."""
    site = await site_by_slug(deps, slug)
    products, skus = await _store(deps).on_sale_range()
    by_product: dict[str, list[SiteSku]] = {}
    for s in skus:
        by_product.setdefault(s["product_id"], []).append(
            SiteSku(
                sku_id=s["_id"],
                name=s["name"],
                face_value_cents=s["face_value_cents"],
                price_cents=_price(site, s),
                delivery_mode=s["delivery_mode"],
            )
        )
    return PublicSite(
        slug=site["slug"],
        title=site["title"],
        products=[
            SiteProduct(product_id=p["_id"], name=p["name"], category_id=p["category_id"], skus=by_product[p["_id"]])
            for p in products
            if p["_id"] in by_product
        ],
    )


def _price(site: Doc, sku: Doc) -> int:
    return sites.site_price(sku["prices"], site["markup_percent"], site.get("prices", {}).get(sku["_id"]))


async def product_on_site(deps: CatalogDeps, product_id: str, slug: str) -> ProductOut:
    """The product page as a site's buyer sees it: every SKU at the site's price, no wholesale
    tiers (they are the platform's level prices), and the level shown as retail."""
    site = await site_by_slug(deps, slug)
    detail = await usecases.product_detail(deps, product_id, None)
    docs = {s["_id"]: s for s in await deps.store.on_sale_skus(product_id)}
    skus = [
        msgspec.structs.replace(s, price_cents=_price(site, docs[s.sku_id]), wholesale=[])
        for s in detail.skus
        if s.sku_id in docs
    ]
    return msgspec.structs.replace(detail, skus=skus)


def site_header(value: str | None) -> str | None:
    """The site a request names in `X-Kameng-Site`, None when it names none; a malformed value is
    a 404 like an unknown site (it can name no site)."""
    if value is None or not value.strip():
        return None
    slug = sites.normalise_slug(value)
    if slug is None:
        raise not_found("site")
    return slug
