"""The catalog's operations: browsing (tree, search, a product priced for the caller) and the
admin changes (scenarios, categories, products, SKUs), one async function each, over `CatalogDeps`.

Browsing is served from the in-process browse cache (`cache.py`): the tree, search pages and a
product priced per level; only the stock state is read live, one Redis round trip per product.
Every function that writes is marked `@changes_catalog`, which empties that cache.

Every SKU create or change bumps its revision and emits `catalog.sku-changed` in the same
transaction; a product or category renamed or moved re-emits every SKU under it. A product
created, edited, or listed/unlisted by its SKUs going on or off sale emits
`catalog.product-changed` (its public fields and service notes) the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from services.catalog import domain
from services.catalog.cache import browse_key, changes_catalog
from services.catalog.deps import CatalogDeps
from services.catalog.schemas import (
    AdminProduct,
    AdminSku,
    CategoryIn,
    ProductIn,
    ProductOut,
    ProductSummary,
    RecipientFieldIn,
    ScenarioIn,
    Shortcut,
    Shortcuts,
    ShortcutsIn,
    SkuIn,
    SkuOut,
    TierOut,
    Tree,
    TreeCategory,
    TreeProduct,
    TreeScenario,
    convert,
)
from services.catalog.store import Doc
from shared.contracts.envelope import new_id
from shared.errors import Problem, not_found, unknown_reference, validation_problem
from shared.messaging.outbox import Tx
from shared.paging import Page, Paging

IMMUTABLE_SKU_FIELDS = ("revision", "product_id", "sku_id")


def _now() -> datetime:
    return datetime.now(UTC)


def _no_such(what: str) -> Problem:
    """A reference in the body to something that does not exist (422 unknown-reference)."""
    return unknown_reference([{"field": f"{what}_id", "message": f"no such {what}"}])


def _check_sku(sku: SkuIn) -> None:
    problems = domain.sku_problems(sku)
    if problems:
        raise validation_problem(problems, "the SKU definition is not valid")


# -- browsing -------------------------------------------------------------------------------------


async def tree(deps: CatalogDeps) -> Tree:
    """Scenarios → categories → listed products, by name."""
    return await deps.browse.get(browse_key("tree"), lambda: _load_tree(deps))


async def _load_tree(deps: CatalogDeps) -> Tree:
    store = deps.store
    scenarios, categories, products = await asyncio.gather(
        store.scenarios(), store.categories(), store.listed_products()
    )
    by_category: dict[str, list[TreeProduct]] = {}
    for p in products:
        by_category.setdefault(p["category_id"], []).append(TreeProduct(p["_id"], p["name"]))
    by_scenario: dict[str, list[TreeCategory]] = {}
    for c in categories:
        by_scenario.setdefault(c["scenario_id"], []).append(
            TreeCategory(c["_id"], c["name"], by_category.get(c["_id"], []))
        )
    return Tree([TreeScenario(s["_id"], s["name"], by_scenario.get(s["_id"], [])) for s in scenarios])


async def search_products(
    deps: CatalogDeps, paging: Paging, *, q: str | None, category_id: str | None, scenario_id: str | None
) -> Page[ProductSummary]:
    """Listed products whose name or on-sale SKU names contain `q`, in a category (or, when no
    category is given, in any category of a scenario), by name."""
    key = browse_key("search", q, category_id, scenario_id, paging.skip, paging.limit)
    return await deps.browse.get(
        key, lambda: _search(deps, paging, q=q, category_id=category_id, scenario_id=scenario_id)
    )


async def _search(
    deps: CatalogDeps, paging: Paging, *, q: str | None, category_id: str | None, scenario_id: str | None
) -> Page[ProductSummary]:
    category_ids: list[str] | None = None
    if category_id:
        category_ids = [category_id]
    elif scenario_id:
        category_ids = await deps.store.category_ids(scenario_id)
    docs, total = await deps.store.search_listed(q, category_ids, skip=paging.skip, limit=paging.limit)
    items = [
        ProductSummary(
            product_id=p["_id"],
            name=p["name"],
            category_id=p["category_id"],
            description=p.get("description", ""),
            sku_names=p.get("sku_names", []),
        )
        for p in docs
    ]
    return paging.of(items, total)


@dataclass(frozen=True)
class ListedProduct:
    """A listed product as stored, with its place in the tree and its on-sale SKUs: the same for
    every caller (prices per level and stock are worked out on top of it)."""

    product: Doc
    category: Doc
    scenario: Doc
    skus: list[Doc]


async def listed_product(deps: CatalogDeps, product_id: str) -> ListedProduct:
    """404 unless the product exists and is listed (has an on-sale SKU)."""
    product = await deps.store.product(product_id)
    if product is None or not product.get("listed"):
        raise not_found("product")
    category = await deps.store.category(product["category_id"]) or {}
    scenario = await deps.store.scenario(category.get("scenario_id")) or {}
    skus = await deps.store.on_sale_skus(product_id)
    return ListedProduct(product=product, category=category, scenario=scenario, skus=skus)


async def product_detail(
    deps: CatalogDeps, product_id: str, level: str | None, readings: list[tuple[str, object]] | None = None
) -> ProductOut:
    """A listed product with its on-sale SKUs priced for `level` (retail when None or unknown)
    and each SKU's stock state (live: the cached product carries none). `readings` receives the
    stock counters the answer was computed from (for the gateway's copy, shared.edge_cache)."""
    level = domain.normalise_level(level)
    priced = await deps.browse.get(
        browse_key("product", product_id, level), lambda: _priced_product(deps, product_id, level)
    )
    auto = [s.sku_id for s in priced.skus if s.delivery_mode == "auto"]
    stocks = await deps.inventory.stocks(auto, readings) if auto else {}
    threshold = deps.settings.catalog_low_stock_threshold
    return msgspec.structs.replace(
        priced,
        skus=[
            msgspec.structs.replace(
                s,
                stock=domain.stock_state(
                    stocks[s.sku_id].sellable if s.sku_id in stocks else 0, s.delivery_mode, threshold, s.key_mode
                ),
            )
            for s in priced.skus
        ],
    )


async def _priced_product(deps: CatalogDeps, product_id: str, level: str) -> ProductOut:
    """The product priced for `level`, its stock left for the caller to fill in."""
    listed = await listed_product(deps, product_id)
    product, category = listed.product, listed.category
    skus = []
    for doc in listed.skus:
        priced = domain.SkuPrices.of(doc)
        skus.append(
            SkuOut(
                sku_id=doc["_id"],
                name=doc["name"],
                face_value_cents=doc["face_value_cents"],
                price_cents=domain.unit_price(priced, level),
                wholesale=[TierOut(q, p) for q, p in domain.visible_tiers(priced, level)],
                delivery_mode=doc["delivery_mode"],
                recipient_fields=[msgspec.convert(f, RecipientFieldIn) for f in doc.get("recipient_fields", [])],
                validity_days=doc.get("validity_days"),
                max_per_order=doc.get("max_per_order"),
                max_per_user=doc.get("max_per_user"),
                requires_real_name=bool(doc.get("requires_real_name")) or bool(doc.get("trial")),
                stock="in_stock",  # a placeholder: product_detail sets the live state per request
                key_mode=doc.get("key_mode") or "single",
                trial=bool(doc.get("trial")),
                eta_seconds=doc.get("eta_seconds"),
                eta_observed_seconds=doc.get("eta_observed_seconds"),
            )
        )
    return ProductOut(
        product_id=product_id,
        name=product["name"],
        description=product.get("description", ""),
        service_notes=product.get("service_notes", ""),
        category_id=product["category_id"],
        category_name=category.get("name", ""),
        scenario_id=category.get("scenario_id", ""),
        scenario_name=listed.scenario.get("name", ""),
        level=level,
        skus=skus,
    )


# -- admin reads ----------------------------------------------------------------------------------


def _admin_sku(doc: Doc) -> AdminSku:
    fields = {k: v for k, v in doc.items() if k in AdminSku.__struct_fields__}
    return convert(fields | {"sku_id": doc["_id"]}, AdminSku)


async def admin_product(deps: CatalogDeps, product_id: str) -> AdminProduct:
    """A product as stored, listed or not, with every SKU (also off sale)."""
    product = await deps.store.product(product_id)
    if product is None:
        raise not_found("product")
    skus = [_admin_sku(doc) for doc in await deps.store.skus_of(product_id)]
    return AdminProduct(
        product_id=product_id,
        category_id=product["category_id"],
        name=product["name"],
        description=product.get("description", ""),
        service_notes=product.get("service_notes", ""),
        listed=bool(product.get("listed")),
        skus=skus,
    )


async def admin_sku(deps: CatalogDeps, sku_id: str) -> AdminSku:
    """A SKU as stored, with its revision."""
    doc = await deps.store.sku(sku_id)
    if doc is None:
        raise not_found("SKU")
    return _admin_sku(doc)


# -- admin changes --------------------------------------------------------------------------------


async def _refresh_listing(deps: CatalogDeps, tx: Tx, product_id: str) -> None:
    """Keep the product's search names and listing flag in step with its on-sale SKUs: a
    product is listed while it has at least one. Listed or unlisted by this change, the product
    is announced (`catalog.product-changed`)."""
    names = await deps.store.on_sale_sku_names(tx, product_id)
    flipped = await deps.store.set_listing(tx, product_id, sku_names=names, listed=bool(names))
    if flipped is not None:
        tx.emit(domain.product_changed(flipped))


async def _republish(deps: CatalogDeps, tx: Tx, product_ids: list[str]) -> None:
    """A product or category changed name or place: every SKU under it gets a new revision, so
    the projections downstream (order's, fulfilment's) see the change."""
    products = await deps.store.products_by_id(tx, product_ids)
    categories = await deps.store.categories_by_id(tx, list({p["category_id"] for p in products.values()}))
    for sku in await deps.store.bump_revisions(tx, product_ids):
        product = products[sku["product_id"]]
        tx.emit(domain.sku_changed(sku, product, categories[product["category_id"]]))


@changes_catalog
async def create_scenario(deps: CatalogDeps, data: ScenarioIn) -> str:
    scenario_id = new_id()
    await deps.store.add_scenario({"_id": scenario_id, "name": data.name.strip(), "created_at": _now()})
    return scenario_id


@changes_catalog
async def rename_scenario(deps: CatalogDeps, scenario_id: str, data: ScenarioIn) -> None:
    if not await deps.store.rename_scenario(scenario_id, data.name.strip()):
        raise not_found("scenario")


@changes_catalog
async def create_category(deps: CatalogDeps, data: CategoryIn) -> str:
    category_id = new_id()

    async def fn(tx: Tx) -> None:
        if await deps.store.scenario(data.scenario_id, tx) is None:
            raise _no_such("scenario")
        doc = {"_id": category_id, "scenario_id": data.scenario_id, "name": data.name.strip(), "created_at": _now()}
        await deps.store.add_category(tx, doc)

    await deps.uow.run(fn)
    return category_id


@changes_catalog
async def update_category(deps: CatalogDeps, category_id: str, changes: Mapping[str, Any]) -> None:
    """Rename or move a category (partial `changes`); every SKU under it is re-emitted."""

    async def fn(tx: Tx) -> None:
        current = await deps.store.category(category_id, tx)
        if current is None:
            raise not_found("category")
        merged = convert({"scenario_id": current["scenario_id"], "name": current["name"], **changes}, CategoryIn)
        if await deps.store.scenario(merged.scenario_id, tx) is None:
            raise _no_such("scenario")
        await deps.store.update_category(tx, category_id, name=merged.name.strip(), scenario_id=merged.scenario_id)
        await _republish(deps, tx, await deps.store.product_ids_in(tx, category_id))

    await deps.uow.run(fn)


@changes_catalog
async def create_product(deps: CatalogDeps, data: ProductIn) -> str:
    """A new product at revision 1, not listed until it has an on-sale SKU; announced as
    `catalog.product-changed`."""
    product_id = new_id()

    async def fn(tx: Tx) -> None:
        if await deps.store.category(data.category_id, tx) is None:
            raise _no_such("category")
        doc = {
            "_id": product_id,
            **msgspec.to_builtins(data),
            "name": data.name.strip(),
            "sku_names": [],
            "listed": False,
            "revision": 1,
            "created_at": _now(),
        }
        await deps.store.add_product(tx, doc)
        tx.emit(domain.product_changed(doc))

    await deps.uow.run(fn)
    return product_id


@changes_catalog
async def update_product(deps: CatalogDeps, product_id: str, changes: Mapping[str, Any]) -> None:
    """Change a product (partial `changes`), announced as `catalog.product-changed`; renamed or
    moved, its SKUs are re-emitted too."""

    async def fn(tx: Tx) -> None:
        current = await deps.store.product(product_id, tx)
        if current is None:
            raise not_found("product")
        fields = {k: current.get(k, "") for k in ("category_id", "name", "description", "service_notes")}
        merged = convert({**fields, **changes}, ProductIn)
        if await deps.store.category(merged.category_id, tx) is None:
            raise _no_such("category")
        stored = {**msgspec.to_builtins(merged), "name": merged.name.strip()}
        updated = await deps.store.update_product(tx, product_id, stored)
        if updated is None:
            raise not_found("product")
        tx.emit(domain.product_changed(updated))
        if merged.name != current["name"] or merged.category_id != current["category_id"]:
            await _republish(deps, tx, [product_id])

    await deps.uow.run(fn)


@changes_catalog
async def create_sku(deps: CatalogDeps, product_id: str, data: SkuIn) -> str:
    """A new SKU at revision 1, announced as `catalog.sku-changed`; 422 and nothing stored when
    its definition breaks a rule (`domain.sku_problems`)."""
    _check_sku(data)
    sku_id = new_id()

    async def fn(tx: Tx) -> None:
        product = await deps.store.product(product_id, tx)
        if product is None:
            raise not_found("product")
        category = await deps.store.category(product["category_id"], tx)
        now = _now()
        doc = {
            "_id": sku_id,
            "product_id": product_id,
            **msgspec.to_builtins(data),
            "revision": 1,
            "created_at": now,
            "updated_at": now,
        }
        doc["name"] = data.name.strip()
        await deps.store.add_sku(tx, doc)
        await _refresh_listing(deps, tx, product_id)
        tx.emit(domain.sku_changed(doc, product, category or {}))

    await deps.uow.run(fn)
    return sku_id


@changes_catalog
async def update_sku(deps: CatalogDeps, sku_id: str, changes: Mapping[str, Any]) -> int:
    """Change a SKU (partial `changes`; `{"on_sale": false}` takes it off sale) and return its
    new revision. The merged definition must pass the same rules as a new SKU (422, nothing
    changed); an edit that lost the race with another is 409."""
    if any(k in changes for k in IMMUTABLE_SKU_FIELDS):
        raise validation_problem([{"field": "body", "message": "revision, product_id and sku_id cannot be changed"}])

    async def fn(tx: Tx) -> int:
        current = await deps.store.sku(sku_id, tx)
        if current is None:
            raise not_found("SKU")
        fields = {k: current[k] for k in SkuIn.__struct_fields__ if k in current}
        merged = convert({**fields, **changes}, SkuIn)
        _check_sku(merged)
        update = {**msgspec.to_builtins(merged), "name": merged.name.strip(), "updated_at": _now()}
        # Guarded by the revision read above: a concurrent edit makes this match nothing.
        updated = await deps.store.update_sku(tx, sku_id, revision=current["revision"], changes=update)
        if updated is None:
            raise Problem(409, "conflict", "Changed meanwhile", "the SKU was changed by someone else; retry")
        product = await deps.store.product(updated["product_id"], tx)
        if product is None:
            raise _no_such("product")
        category = await deps.store.category(product["category_id"], tx)
        if category is None:
            raise _no_such("category")
        await _refresh_listing(deps, tx, updated["product_id"])
        tx.emit(domain.sku_changed(updated, product, category))
        return int(updated["revision"])

    return await deps.uow.run(fn)


@changes_catalog
async def observed_eta(deps: CatalogDeps, tx: Tx, sku_id: str, seconds: int | None) -> None:
    """预计到账时间: show the order service's latest p90 of this SKU's real deliveries (a write
    like any other: the browse cache, which holds the product page, is emptied)."""
    await deps.store.set_observed_eta(tx, sku_id, seconds)


# -- quick-access shortcuts (首页快捷入口) ----------------------------------------------------------


async def _resolve(deps: CatalogDeps, item: Mapping[str, str]) -> Shortcut | None:
    """A pinned category or product with its current title; None when it is gone or unlisted."""
    if item["kind"] == "category":
        doc = await deps.store.category(item["id"])
    else:
        doc = await deps.store.product(item["id"])
        if doc is not None and not doc.get("listed", False):
            doc = None
    return Shortcut(kind=item["kind"], id=item["id"], title=doc["name"]) if doc else None


async def shortcuts(deps: CatalogDeps, user_id: str) -> Shortcuts:
    """The caller's pins in their order; pins whose category or product went away drop out."""
    resolved = await asyncio.gather(*(_resolve(deps, i) for i in await deps.store.shortcuts(user_id)))
    return Shortcuts(shortcuts=[s for s in resolved if s is not None])


async def set_shortcuts(deps: CatalogDeps, user_id: str, data: ShortcutsIn) -> Shortcuts:
    """Replace the caller's pins (at most 12, each once, each an existing category or a listed
    product); 422 naming each bad entry, nothing changed."""
    items = [{"kind": s.kind, "id": s.id} for s in data.shortcuts]
    resolved = await asyncio.gather(*(_resolve(deps, i) for i in items))
    errors, unknown = [], []
    seen: set[tuple[str, str]] = set()
    for n, (item, found) in enumerate(zip(items, resolved, strict=True)):
        key = (item["kind"], item["id"])
        if key in seen:
            errors.append({"field": f"shortcuts[{n}]", "message": "pinned twice"})
        seen.add(key)
        if found is None:
            unknown.append({"field": f"shortcuts[{n}].id", "message": f"no such {item['kind']}"})
    if errors:
        raise validation_problem(errors + unknown)
    if unknown:
        raise unknown_reference(unknown)
    await deps.store.set_shortcuts(user_id, items, _now())
    return Shortcuts(shortcuts=[s for s in resolved if s is not None])
