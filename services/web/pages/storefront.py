"""The storefront every visitor sees: home (announcements, search box, 场景 → 品类 → 商品 tree),
a category's products, search results and the product page. The catalog answers go through the
page cache (a short TTL): these pages are the same for everyone of a price level."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.params import Parameter
from litestar.response import Template

from services.web.client import ApiProblem
from services.web.render import page
from services.web.session import PageNotFound
from services.web.visitor import Visitor


async def catalog_tree(visitor: Visitor) -> dict[str, Any]:
    tree: dict[str, Any] = await visitor.cached("tree", "GET", "catalog/tree")
    return tree


async def announcements(visitor: Visitor) -> list[dict[str, Any]]:
    try:
        answer = await visitor.cached("announcements", "GET", "announcements")
    except ApiProblem:
        return []  # the home page still sells when support is down
    items = answer.get("items", answer) if isinstance(answer, dict) else answer
    return list(items or [])


def find_category(tree: dict[str, Any], category_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    for scenario in tree.get("scenarios", []):
        for category in scenario.get("categories", []):
            if category.get("category_id") == category_id:
                return scenario, category
    return None


def _level(visitor: Visitor) -> str:
    return str(visitor.session.user.get("level", "retail")) if visitor.session else "anonymous"


class StorefrontPages(Controller):
    path = "/"

    @get("/")
    async def home(self, visitor: Visitor) -> Template:
        tree = await catalog_tree(visitor)
        return page(visitor, "pages/home.html", tree=tree, announcements=(await announcements(visitor))[:5])

    @get("/category/{category_id:str}")
    async def category(self, visitor: Visitor, category_id: str) -> Template:
        tree = await catalog_tree(visitor)
        found = find_category(tree, category_id)
        if found is None:
            # Perhaps newer than the cached tree: ask once more before saying it does not exist.
            tree = await visitor.deps.api.call("GET", "catalog/tree", request_id=visitor.request_id)
            found = find_category(tree, category_id)
        if found is None:
            raise PageNotFound
        scenario, category = found
        return page(visitor, "pages/category.html", scenario=scenario, category=category, tree=tree)

    @get("/search")
    async def search(
        self, visitor: Visitor, q: str = "", page_no: int = Parameter(query="page", default=1)
    ) -> Template:
        q = q.strip()[:100]
        results: dict[str, Any] = {"items": [], "total": 0, "page": 1, "page_size": 20}
        if q:
            results = await visitor.public(
                "GET", "catalog/products", params={"q": q, "page": max(1, min(page_no, 10_000)), "page_size": 20}
            )
        return page(visitor, "pages/search.html", q=q, results=results)

    @get("/product/{product_id:str}")
    async def product(self, visitor: Visitor, product_id: str) -> Template:
        token = await visitor.deps.sessions.token(visitor.session) if visitor.session else None
        product = await visitor.cached(
            f"product:{product_id}:{_level(visitor)}", "GET", f"catalog/products/{product_id}", token=token
        )
        return page(visitor, "pages/product.html", product=product)
