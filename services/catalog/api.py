"""The catalog service's HTTP API (served under the public paths, reached through the gateway).

Public browsing (`/api/v1/catalog/...`, anonymous allowed: prices for the caller's level, retail
when anonymous) and the admin catalog (`/api/v1/admin/...`, role admin).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, patch, post
from litestar.params import Body, Parameter

from services.catalog import domain
from services.catalog.settings import CatalogSettings
from services.catalog.store import (
    CATEGORIES,
    PRODUCTS,
    SCENARIOS,
    SKUS,
    name_filter,
    refresh_product,
    republish,
    sku_event,
)
from shared.auth import Caller, require_roles
from shared.contracts.catalog import DeliveryMode
from shared.contracts.envelope import new_id
from shared.errors import Problem, not_found, validation_problem
from shared.inventory import Inventory
from shared.messaging.outbox import Tx
from shared.money import Cents
from shared.runtime import Runtime

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Text = Annotated[str, msgspec.Meta(max_length=5000)]
Count = Annotated[int, msgspec.Meta(ge=1, le=100_000)]


# -- request bodies -------------------------------------------------------------------------------


class ScenarioIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name


class CategoryIn(msgspec.Struct, forbid_unknown_fields=True):
    scenario_id: str
    name: Name


class ProductIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    category_id: str
    name: Name
    description: Text = ""
    service_notes: Text = ""


class TierIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    min_quantity: Annotated[int, msgspec.Meta(ge=2, le=100_000)]
    price_cents: Cents


class RecipientFieldIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    label: Name
    required: bool = True
    pattern: str | None = None
    min_length: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None
    max_length: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None


class SkuIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    face_value_cents: Cents
    prices: dict[str, Cents]
    wholesale: Annotated[list[TierIn], msgspec.Meta(max_length=20)] = []
    delivery_mode: DeliveryMode
    recipient_fields: Annotated[list[RecipientFieldIn], msgspec.Meta(max_length=10)] = []
    validity_days: Annotated[int, msgspec.Meta(ge=1, le=36500)] | None = None
    max_per_order: Count | None = None
    max_per_user: Count | None = None
    requires_real_name: bool = False
    on_sale: bool = True


# -- responses ------------------------------------------------------------------------------------


class TierOut(msgspec.Struct, frozen=True):
    min_quantity: int
    price_cents: int


class SkuOut(msgspec.Struct, frozen=True, kw_only=True):
    sku_id: str
    name: str
    face_value_cents: int
    price_cents: int
    """Unit price for the caller's member level (retail when anonymous)."""
    wholesale: list[TierOut]
    delivery_mode: DeliveryMode
    recipient_fields: list[RecipientFieldIn]
    validity_days: int | None
    max_per_order: int | None
    max_per_user: int | None
    requires_real_name: bool
    stock: domain.StockState


class ProductOut(msgspec.Struct, frozen=True, kw_only=True):
    product_id: str
    name: str
    description: str
    service_notes: str
    category_id: str
    category_name: str
    scenario_id: str
    scenario_name: str
    level: str
    """The member level the prices are for."""
    skus: list[SkuOut]


class ProductSummary(msgspec.Struct, frozen=True, kw_only=True):
    product_id: str
    name: str
    category_id: str
    description: str
    sku_names: list[str]


class ProductPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[ProductSummary]
    page: int
    page_size: int
    total: int


class TreeProduct(msgspec.Struct, frozen=True):
    product_id: str
    name: str


class TreeCategory(msgspec.Struct, frozen=True):
    category_id: str
    name: str
    products: list[TreeProduct]


class TreeScenario(msgspec.Struct, frozen=True):
    scenario_id: str
    name: str
    categories: list[TreeCategory]


class Tree(msgspec.Struct, frozen=True):
    scenarios: list[TreeScenario]


class AdminSku(SkuIn, kw_only=True):
    sku_id: str
    product_id: str
    revision: int


class AdminProduct(msgspec.Struct, frozen=True, kw_only=True):
    product_id: str
    category_id: str
    name: str
    description: str
    service_notes: str
    listed: bool
    skus: list[AdminSku]


def _admin_sku(doc: dict[str, Any]) -> AdminSku:
    fields = {k: v for k, v in doc.items() if k in AdminSku.__struct_fields__}
    sku: AdminSku = _convert(fields | {"sku_id": doc["_id"]}, AdminSku)
    return sku


def _now() -> datetime:
    return datetime.now(UTC)


def _settings(runtime: Runtime) -> CatalogSettings:
    return runtime.settings  # type: ignore[return-value]


def _convert(data: Any, model: type[Any]) -> Any:
    """msgspec validation with the problem+json shape of a 422."""
    try:
        return msgspec.convert(data, model)
    except msgspec.ValidationError as exc:
        message = str(exc)
        field = message.rsplit("at `$.", 1)[1].rstrip("`") if "at `$." in message else "body"
        raise validation_problem([{"field": field, "message": message.split(" - at ")[0]}]) from exc


def _check_sku(sku: SkuIn) -> None:
    problems = domain.price_problems(sku.prices, sku.wholesale) + domain.recipient_field_problems(sku.recipient_fields)
    if sku.delivery_mode == "direct" and not sku.recipient_fields:
        problems.append({"field": "recipient_fields", "message": "a direct top-up needs the recipient (e.g. mobile)"})
    if sku.max_per_order and sku.max_per_user and sku.max_per_order > sku.max_per_user:
        problems.append({"field": "max_per_order", "message": "greater than max_per_user"})
    if problems:
        raise validation_problem(problems, "the SKU definition is not valid")


async def _stock(runtime: Runtime, skus: list[dict[str, Any]]) -> dict[str, int]:
    inventory = Inventory(runtime.redis)
    auto = [s["_id"] for s in skus if s["delivery_mode"] == "auto"]
    stocks = await asyncio.gather(*(inventory.stock(sku_id) for sku_id in auto))
    return {sku_id: s.sellable for sku_id, s in zip(auto, stocks, strict=True)}


# -- public ---------------------------------------------------------------------------------------


class CatalogController(Controller):
    path = "/api/v1/catalog"
    tags = ["catalog"]

    @get("/tree", summary="Scenarios -> categories -> products (listed ones)")
    async def tree(self, runtime: Runtime) -> Tree:
        db = runtime.mongo.db
        scenarios = [s async for s in db[SCENARIOS].find().sort([("name", 1), ("_id", 1)])]
        categories = [c async for c in db[CATEGORIES].find().sort([("name", 1), ("_id", 1)])]
        products = [
            p async for p in db[PRODUCTS].find({"listed": True}, {"name": 1, "category_id": 1}).sort([("name", 1)])
        ]
        by_category: dict[str, list[TreeProduct]] = {}
        for p in products:
            by_category.setdefault(p["category_id"], []).append(TreeProduct(p["_id"], p["name"]))
        by_scenario: dict[str, list[TreeCategory]] = {}
        for c in categories:
            by_scenario.setdefault(c["scenario_id"], []).append(
                TreeCategory(c["_id"], c["name"], by_category.get(c["_id"], []))
            )
        return Tree([TreeScenario(s["_id"], s["name"], by_scenario.get(s["_id"], [])) for s in scenarios])

    @get("/products", summary="Search products by name (Chinese works), filter by category, paginate")
    async def products(
        self,
        runtime: Runtime,
        q: Annotated[str | None, Parameter(max_length=100)] = None,
        category_id: str | None = None,
        scenario_id: str | None = None,
        page: Annotated[int, Parameter(ge=1, le=10_000)] = 1,
        page_size: Annotated[int, Parameter(ge=1, le=100)] = 20,
    ) -> ProductPage:
        db = runtime.mongo.db
        query: dict[str, Any] = {"listed": True}
        if q and q.strip():
            query.update(name_filter(q))
        if category_id:
            query["category_id"] = category_id
        elif scenario_id:
            query["category_id"] = {
                "$in": [c["_id"] async for c in db[CATEGORIES].find({"scenario_id": scenario_id}, {"_id": 1})]
            }
        total = await db[PRODUCTS].count_documents(query)
        cursor = db[PRODUCTS].find(query).sort([("name", 1), ("_id", 1)]).skip((page - 1) * page_size).limit(page_size)
        items = [
            ProductSummary(
                product_id=p["_id"],
                name=p["name"],
                category_id=p["category_id"],
                description=p.get("description", ""),
                sku_names=p.get("sku_names", []),
            )
            async for p in cursor
        ]
        return ProductPage(items=items, page=page, page_size=page_size, total=int(total))

    @get("/products/{product_id:str}", summary="A product with its on-sale SKUs, priced for the caller's level")
    async def product(self, runtime: Runtime, viewer: Caller | None, product_id: str) -> ProductOut:
        db = runtime.mongo.db
        product = await db[PRODUCTS].find_one({"_id": product_id})
        if product is None or not product.get("listed"):
            raise not_found("product")
        category = await db[CATEGORIES].find_one({"_id": product["category_id"]}) or {}
        scenario = await db[SCENARIOS].find_one({"_id": category.get("scenario_id")}) or {}
        skus = [
            s
            async for s in db[SKUS]
            .find({"product_id": product_id, "on_sale": True})
            .sort([("face_value_cents", 1), ("_id", 1)])
        ]
        sellable = await _stock(runtime, skus)
        level = domain.normalise_level(viewer.level if viewer else None)
        threshold = _settings(runtime).catalog_low_stock_threshold
        out = []
        for doc in skus:
            event = sku_event(doc, product, category)
            out.append(
                SkuOut(
                    sku_id=doc["_id"],
                    name=doc["name"],
                    face_value_cents=doc["face_value_cents"],
                    price_cents=domain.unit_price(event, level),
                    wholesale=[TierOut(q, p) for q, p in domain.visible_tiers(event, level)],
                    delivery_mode=doc["delivery_mode"],
                    recipient_fields=[msgspec.convert(f, RecipientFieldIn) for f in doc.get("recipient_fields", [])],
                    validity_days=doc.get("validity_days"),
                    max_per_order=doc.get("max_per_order"),
                    max_per_user=doc.get("max_per_user"),
                    requires_real_name=bool(doc.get("requires_real_name")),
                    stock=domain.stock_state(sellable.get(doc["_id"], 0), doc["delivery_mode"], threshold),
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
            scenario_name=scenario.get("name", ""),
            level=level,
            skus=out,
        )


# -- admin ----------------------------------------------------------------------------------------

_admin = [require_roles("admin")]


async def _must_exist(tx: Tx, collection: str, _id: str, what: str) -> dict[str, Any]:
    doc: dict[str, Any] | None = await tx.db[collection].find_one({"_id": _id}, session=tx.session)
    if doc is None:
        raise Problem(
            422,
            "validation-error",
            "Invalid request",
            f"no such {what}",
            errors=[{"field": f"{what}_id", "message": f"no such {what}"}],
        )
    return doc


class CatalogAdminController(Controller):
    path = "/api/v1/admin"
    tags = ["catalog admin"]
    guards = _admin

    @post("/scenarios", summary="Create a scenario (e.g. 通信充值)")
    async def create_scenario(self, runtime: Runtime, data: ScenarioIn) -> dict[str, str]:
        scenario_id = new_id()
        await runtime.mongo.db[SCENARIOS].insert_one(
            {"_id": scenario_id, "name": data.name.strip(), "created_at": _now()}
        )
        return {"scenario_id": scenario_id}

    @patch("/scenarios/{scenario_id:str}")
    async def update_scenario(self, runtime: Runtime, scenario_id: str, data: ScenarioIn) -> dict[str, str]:
        result = await runtime.mongo.db[SCENARIOS].update_one(
            {"_id": scenario_id}, {"$set": {"name": data.name.strip()}}
        )
        if result.matched_count == 0:
            raise not_found("scenario")
        return {"scenario_id": scenario_id}

    @post("/categories", summary="Create a category in a scenario (e.g. 话费充值)")
    async def create_category(self, runtime: Runtime, data: CategoryIn) -> dict[str, str]:
        category_id = new_id()

        async def fn(tx: Tx) -> None:
            await _must_exist(tx, SCENARIOS, data.scenario_id, "scenario")
            doc = {"_id": category_id, "scenario_id": data.scenario_id, "name": data.name.strip(), "created_at": _now()}
            await tx.db[CATEGORIES].insert_one(doc, session=tx.session)

        await runtime.uow.run(fn)
        return {"category_id": category_id}

    @patch("/categories/{category_id:str}")
    async def update_category(
        self, runtime: Runtime, category_id: str, data: Annotated[dict[str, Any], Body()]
    ) -> dict[str, str]:
        async def fn(tx: Tx) -> None:
            current = await tx.db[CATEGORIES].find_one({"_id": category_id}, session=tx.session)
            if current is None:
                raise not_found("category")
            merged = _convert({"scenario_id": current["scenario_id"], "name": current["name"], **data}, CategoryIn)
            await _must_exist(tx, SCENARIOS, merged.scenario_id, "scenario")
            await tx.db[CATEGORIES].update_one(
                {"_id": category_id},
                {"$set": {"name": merged.name.strip(), "scenario_id": merged.scenario_id}},
                session=tx.session,
            )
            products = [
                p["_id"]
                async for p in tx.db[PRODUCTS].find({"category_id": category_id}, {"_id": 1}, session=tx.session)
            ]
            await republish(tx, products)

        await runtime.uow.run(fn)
        return {"category_id": category_id}

    @post("/products", summary="Create a product in a category (e.g. 中国移动话费)")
    async def create_product(self, runtime: Runtime, data: ProductIn) -> dict[str, str]:
        product_id = new_id()

        async def fn(tx: Tx) -> None:
            await _must_exist(tx, CATEGORIES, data.category_id, "category")
            doc = {
                "_id": product_id,
                **msgspec.to_builtins(data),
                "name": data.name.strip(),
                "sku_names": [],
                "listed": False,
                "created_at": _now(),
            }
            await tx.db[PRODUCTS].insert_one(doc, session=tx.session)

        await runtime.uow.run(fn)
        return {"product_id": product_id}

    @patch("/products/{product_id:str}")
    async def update_product(
        self, runtime: Runtime, product_id: str, data: Annotated[dict[str, Any], Body()]
    ) -> dict[str, str]:
        async def fn(tx: Tx) -> None:
            current = await tx.db[PRODUCTS].find_one({"_id": product_id}, session=tx.session)
            if current is None:
                raise not_found("product")
            fields = {k: current.get(k, "") for k in ("category_id", "name", "description", "service_notes")}
            merged = _convert({**fields, **data}, ProductIn)
            await _must_exist(tx, CATEGORIES, merged.category_id, "category")
            await tx.db[PRODUCTS].update_one(
                {"_id": product_id},
                {"$set": {**msgspec.to_builtins(merged), "name": merged.name.strip()}},
                session=tx.session,
            )
            if merged.name != current["name"] or merged.category_id != current["category_id"]:
                await republish(tx, [product_id])

        await runtime.uow.run(fn)
        return {"product_id": product_id}

    @post("/products/{product_id:str}/skus", summary="Create a SKU (e.g. 中国移动 100 元) with prices per level")
    async def create_sku(self, runtime: Runtime, product_id: str, data: SkuIn) -> dict[str, str]:
        _check_sku(data)
        sku_id = new_id()

        async def fn(tx: Tx) -> None:
            product = await tx.db[PRODUCTS].find_one({"_id": product_id}, session=tx.session)
            if product is None:
                raise not_found("product")
            category = await tx.db[CATEGORIES].find_one({"_id": product["category_id"]}, session=tx.session)
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
            await tx.db[SKUS].insert_one(doc, session=tx.session)
            await refresh_product(tx, product_id)
            tx.emit(sku_event(doc, product, category or {}))

        await runtime.uow.run(fn)
        return {"sku_id": sku_id}

    @get("/products/{product_id:str}", summary="A product with every SKU, on sale or not")
    async def get_product(self, runtime: Runtime, product_id: str) -> AdminProduct:
        db = runtime.mongo.db
        product = await db[PRODUCTS].find_one({"_id": product_id})
        if product is None:
            raise not_found("product")
        skus = [
            _admin_sku(doc)
            async for doc in db[SKUS].find({"product_id": product_id}).sort([("created_at", 1), ("_id", 1)])
        ]
        return AdminProduct(
            product_id=product_id,
            category_id=product["category_id"],
            name=product["name"],
            description=product.get("description", ""),
            service_notes=product.get("service_notes", ""),
            listed=bool(product.get("listed")),
            skus=skus,
        )

    @get("/skus/{sku_id:str}", summary="A SKU as stored, with its revision")
    async def get_sku(self, runtime: Runtime, sku_id: str) -> AdminSku:
        doc = await runtime.mongo.db[SKUS].find_one({"_id": sku_id})
        if doc is None:
            raise not_found("SKU")
        return _admin_sku(doc)

    @patch("/skus/{sku_id:str}", summary='Change a SKU (partial); `{"on_sale": false}` takes it off sale')
    async def update_sku(
        self, runtime: Runtime, sku_id: str, data: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        if "revision" in data or "product_id" in data or "sku_id" in data:
            raise validation_problem(
                [{"field": "body", "message": "revision, product_id and sku_id cannot be changed"}]
            )

        async def fn(tx: Tx) -> int:
            current = await tx.db[SKUS].find_one({"_id": sku_id}, session=tx.session)
            if current is None:
                raise not_found("SKU")
            fields = {k: current[k] for k in SkuIn.__struct_fields__ if k in current}
            merged: SkuIn = _convert({**fields, **data}, SkuIn)
            _check_sku(merged)
            changes = {**msgspec.to_builtins(merged), "name": merged.name.strip(), "updated_at": _now()}
            # Guarded by the revision read above: a concurrent edit makes this match nothing.
            updated = await tx.db[SKUS].find_one_and_update(
                {"_id": sku_id, "revision": current["revision"]},
                {"$set": changes, "$inc": {"revision": 1}},
                return_document=True,
                session=tx.session,
            )
            if updated is None:
                raise Problem(409, "conflict", "Changed meanwhile", "the SKU was changed by someone else; retry")
            product = await _must_exist(tx, PRODUCTS, updated["product_id"], "product")
            category = await _must_exist(tx, CATEGORIES, product["category_id"], "category")
            await refresh_product(tx, updated["product_id"])
            tx.emit(sku_event(updated, product, category))
            return int(updated["revision"])

        revision = await runtime.uow.run(fn)
        return {"sku_id": sku_id, "revision": revision}


CONTROLLERS: list[Any] = [CatalogController, CatalogAdminController]
