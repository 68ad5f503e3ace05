"""The catalog service's HTTP API (served under the public paths, reached through the gateway).

Public browsing (`/api/v1/catalog/...`, anonymous allowed: prices for the caller's level, retail
when anonymous) and the admin catalog (`/api/v1/admin/...`, role admin). Each handler parses its
input, calls one use case (`usecases.py`) and shapes the answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get, patch, post, put
from litestar.params import Body, Parameter

from services.catalog import sites, usecases
from services.catalog.deps import CatalogDeps
from services.catalog.schemas import (
    AdminProduct,
    AdminSku,
    CategoryIn,
    ProductIn,
    ProductOut,
    ProductSummary,
    ScenarioIn,
    Shortcuts,
    ShortcutsIn,
    SkuIn,
    Tree,
)
from shared import edge_cache
from shared.auth import ADMIN, AGENT, Caller
from shared.paging import Page, Paging

Patch = Annotated[dict[str, Any], Body()]
SiteHeader = Annotated[str | None, Parameter(header="X-Kameng-Site", required=False)]
"""The sub-site a request is made on (`shared.sites.SITE_HEADER`): its prices instead of the level's."""


class CatalogController(Controller):
    path = "/api/v1/catalog"
    tags = ["catalog"]

    # The three reads every visitor makes declare what they were computed from, so the gateway
    # can answer repeats itself while those facts stand (shared.edge_cache, Decision 33).

    @get("/tree", summary="Scenarios -> categories -> products (listed ones)")
    async def tree(self, deps: CatalogDeps) -> Response[Tree]:
        facts = [deps.browse.generation_fact()]
        return Response(await usecases.tree(deps), headers=edge_cache.declare(facts))

    @get("/products", summary="Search products by name (Chinese works), filter by category, paginate")
    async def products(
        self,
        deps: CatalogDeps,
        paging: Paging,
        q: Annotated[str | None, Parameter(max_length=100)] = None,
        category_id: str | None = None,
        scenario_id: str | None = None,
    ) -> Response[Page[ProductSummary]]:
        facts = [deps.browse.generation_fact()]
        page = await usecases.search_products(deps, paging, q=q, category_id=category_id, scenario_id=scenario_id)
        return Response(page, headers=edge_cache.declare(facts))

    @get("/products/{product_id:str}", summary="A product with its on-sale SKUs, priced for the caller's level")
    async def product(
        self, deps: CatalogDeps, viewer: Caller | None, product_id: str, site: SiteHeader = None
    ) -> Response[ProductOut]:
        if slug := sites.site_header(site):
            # A sub-site's page reads the site as it is now: not kept at the edge.
            return Response(await sites.product_on_site(deps, product_id, slug))
        facts = [deps.browse.generation_fact()]
        detail = await usecases.product_detail(deps, product_id, viewer.level if viewer else None, facts)
        return Response(detail, headers=edge_cache.declare(facts, vary_level=True))


class SiteController(Controller):
    path = "/api/v1"
    tags = ["sub-sites"]

    @get("/sites/{slug:str}", summary="A sub-site (分站): its title, products and prices (public)")
    async def site(self, deps: CatalogDeps, slug: str) -> sites.PublicSite:
        return await sites.public_site(deps, slug)

    @get("/agent/site", guards=[AGENT], summary="My sub-site's settings, with my cost and price per SKU")
    async def my_site(self, deps: CatalogDeps, caller: Caller) -> sites.AgentSite:
        return await sites.agent_site(deps, caller.user_id)

    @put(
        "/agent/site",
        guards=[AGENT],
        summary="Create or change my sub-site: slug, title, markup and own prices",
        description="422 when a price is below my cost (field prices.<sku_id>) or the slug is malformed; "
        "409 when another agent has the slug.",
    )
    async def save_site(self, deps: CatalogDeps, caller: Caller, data: sites.SiteIn) -> sites.AgentSite:
        return await sites.save_site(deps, caller.user_id, data)


class CatalogAdminController(Controller):
    path = "/api/v1/admin"
    tags = ["catalog admin"]
    guards = [ADMIN]

    @post("/scenarios", summary="Create a scenario (e.g. 通信充值)")
    async def create_scenario(self, deps: CatalogDeps, data: ScenarioIn) -> dict[str, str]:
        return {"scenario_id": await usecases.create_scenario(deps, data)}

    @patch("/scenarios/{scenario_id:str}")
    async def update_scenario(self, deps: CatalogDeps, scenario_id: str, data: ScenarioIn) -> dict[str, str]:
        await usecases.rename_scenario(deps, scenario_id, data)
        return {"scenario_id": scenario_id}

    @post("/categories", summary="Create a category in a scenario (e.g. 话费充值)")
    async def create_category(self, deps: CatalogDeps, data: CategoryIn) -> dict[str, str]:
        return {"category_id": await usecases.create_category(deps, data)}

    @patch("/categories/{category_id:str}")
    async def update_category(self, deps: CatalogDeps, category_id: str, data: Patch) -> dict[str, str]:
        await usecases.update_category(deps, category_id, data)
        return {"category_id": category_id}

    @post("/products", summary="Create a product in a category (e.g. 中国移动话费)")
    async def create_product(self, deps: CatalogDeps, data: ProductIn) -> dict[str, str]:
        return {"product_id": await usecases.create_product(deps, data)}

    @patch("/products/{product_id:str}")
    async def update_product(self, deps: CatalogDeps, product_id: str, data: Patch) -> dict[str, str]:
        await usecases.update_product(deps, product_id, data)
        return {"product_id": product_id}

    @post("/products/{product_id:str}/skus", summary="Create a SKU (e.g. 中国移动 100 元) with prices per level")
    async def create_sku(self, deps: CatalogDeps, product_id: str, data: SkuIn) -> dict[str, str]:
        return {"sku_id": await usecases.create_sku(deps, product_id, data)}

    @get("/products/{product_id:str}", summary="A product with every SKU, on sale or not")
    async def get_product(self, deps: CatalogDeps, product_id: str) -> AdminProduct:
        return await usecases.admin_product(deps, product_id)

    @get("/skus/{sku_id:str}", summary="A SKU as stored, with its revision")
    async def get_sku(self, deps: CatalogDeps, sku_id: str) -> AdminSku:
        return await usecases.admin_sku(deps, sku_id)

    @patch("/skus/{sku_id:str}", summary='Change a SKU (partial); `{"on_sale": false}` takes it off sale')
    async def update_sku(self, deps: CatalogDeps, sku_id: str, data: Patch) -> dict[str, Any]:
        return {"sku_id": sku_id, "revision": await usecases.update_sku(deps, sku_id, data)}


class ShortcutController(Controller):
    """首页快捷入口: a signed-in buyer's pinned categories and products. Served by the catalog,
    which owns what they point at (titles, and whether they still exist)."""

    path = "/api/v1/me/shortcuts"
    tags = ["catalog"]

    @get("/", summary="My quick-access shortcuts, with their titles")
    async def get_shortcuts(self, deps: CatalogDeps, caller: Caller) -> Shortcuts:
        return await usecases.shortcuts(deps, caller.user_id)

    @put("/", summary="Replace my shortcuts (at most 12 categories or products, in order)")
    async def put_shortcuts(self, deps: CatalogDeps, caller: Caller, data: ShortcutsIn) -> Shortcuts:
        return await usecases.set_shortcuts(deps, caller.user_id, data)


CONTROLLERS: list[Any] = [CatalogController, CatalogAdminController, SiteController, ShortcutController]
