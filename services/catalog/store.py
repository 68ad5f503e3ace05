"""Every MongoDB call of the catalog service (database `kameng_catalog`), in `CatalogStore`.

    scenarios   {_id, name}                          通信充值
    categories  {_id, scenario_id, name}             话费充值
    products    {_id, category_id, name, description, service_notes,
                 sku_names (on-sale SKUs, for search), listed (has an on-sale SKU), revision}
    skus        {_id, product_id, name, face value, prices per level, tiers, delivery mode,
                 recipient fields, validity, limits, on_sale, revision}

Every SKU write bumps its `revision` and emits `catalog.sku-changed` in the same transaction
(the use cases do both through a `Tx`); a product's edits and listing flips bump its own
`revision` and emit `catalog.product-changed` the same way. Methods that take a `tx` run inside that transaction;
reads that take `tx=None` run outside one when none is given.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from motor.motor_asyncio import AsyncIOMotorClientSession, AsyncIOMotorDatabase
from pymongo import ReturnDocument

from shared.messaging.outbox import Tx
from shared.mongo import Index

SCENARIOS = "scenarios"
CATEGORIES = "categories"
PRODUCTS = "products"
SKUS = "skus"
SHORTCUTS = "shortcuts"
"""One document per user: the categories and products they pinned (首页快捷入口)."""

INDEXES: list[Index] = [
    Index(CATEGORIES, [("scenario_id", 1)]),
    Index(PRODUCTS, [("category_id", 1), ("listed", 1)]),
    Index(SKUS, [("product_id", 1)]),
]

Doc = dict[str, Any]

BY_NAME = [("name", 1), ("_id", 1)]


def _session(tx: Tx | None) -> AsyncIOMotorClientSession | None:
    return tx.session if tx is not None else None


def name_filter(q: str) -> Doc:
    """Case-insensitive substring match on product and SKU names; Chinese works as is (no word
    splitting needed for a substring). Escaped: the buyer's text is never a pattern."""
    pattern = {"$regex": re.escape(q.strip()), "$options": "i"}
    return {"$or": [{"name": pattern}, {"sku_names": pattern}]}


class CatalogStore:
    def __init__(self, db: AsyncIOMotorDatabase[Any]) -> None:
        self.db = db

    # -- browsing ----------------------------------------------------------------------------

    async def scenarios(self) -> list[Doc]:
        return [s async for s in self.db[SCENARIOS].find().sort(BY_NAME)]

    async def categories(self) -> list[Doc]:
        return [c async for c in self.db[CATEGORIES].find().sort(BY_NAME)]

    async def listed_products(self) -> list[Doc]:
        """Listed products, names and categories only (the tree)."""
        cursor = self.db[PRODUCTS].find({"listed": True}, {"name": 1, "category_id": 1}).sort([("name", 1)])
        return [p async for p in cursor]

    async def category_ids(self, scenario_id: str) -> list[str]:
        return [c["_id"] async for c in self.db[CATEGORIES].find({"scenario_id": scenario_id}, {"_id": 1})]

    async def search_listed(
        self, q: str | None, category_ids: list[str] | None, *, skip: int, limit: int
    ) -> tuple[list[Doc], int]:
        """Listed products matching `q` (see `name_filter`) in one of `category_ids` (any when
        None), by name: one page of them and how many match in all."""
        query: Doc = {"listed": True}
        if q and q.strip():
            query.update(name_filter(q))
        if category_ids is not None:
            query["category_id"] = {"$in": category_ids}
        total = await self.db[PRODUCTS].count_documents(query)
        cursor = self.db[PRODUCTS].find(query).sort(BY_NAME).skip(skip).limit(limit)
        return [p async for p in cursor], int(total)

    # -- one document, inside a transaction when `tx` is given --------------------------------

    async def scenario(self, scenario_id: str | None, tx: Tx | None = None) -> Doc | None:
        doc: Doc | None = await self.db[SCENARIOS].find_one({"_id": scenario_id}, session=_session(tx))
        return doc

    async def category(self, category_id: str | None, tx: Tx | None = None) -> Doc | None:
        doc: Doc | None = await self.db[CATEGORIES].find_one({"_id": category_id}, session=_session(tx))
        return doc

    async def product(self, product_id: str, tx: Tx | None = None) -> Doc | None:
        doc: Doc | None = await self.db[PRODUCTS].find_one({"_id": product_id}, session=_session(tx))
        return doc

    async def shortcuts(self, user_id: str) -> list[Doc]:
        doc = await self.db[SHORTCUTS].find_one({"_id": user_id})
        return list(doc["items"]) if doc else []

    async def set_shortcuts(self, user_id: str, items: list[Doc], at: datetime) -> None:
        await self.db[SHORTCUTS].replace_one({"_id": user_id}, {"items": items, "updated_at": at}, upsert=True)

    async def sku(self, sku_id: str, tx: Tx | None = None) -> Doc | None:
        doc: Doc | None = await self.db[SKUS].find_one({"_id": sku_id}, session=_session(tx))
        return doc

    async def on_sale_skus(self, product_id: str) -> list[Doc]:
        """What a buyer can pick on the product page, cheapest face value first."""
        cursor = (
            self.db[SKUS].find({"product_id": product_id, "on_sale": True}).sort([("face_value_cents", 1), ("_id", 1)])
        )
        return [s async for s in cursor]

    async def skus_of(self, product_id: str) -> list[Doc]:
        """Every SKU of the product, on sale or not, oldest first (the admin view)."""
        cursor = self.db[SKUS].find({"product_id": product_id}).sort([("created_at", 1), ("_id", 1)])
        return [s async for s in cursor]

    # -- writes ------------------------------------------------------------------------------

    async def add_scenario(self, doc: Doc) -> None:
        await self.db[SCENARIOS].insert_one(doc)

    async def rename_scenario(self, scenario_id: str, name: str) -> bool:
        """False when there is no such scenario."""
        result = await self.db[SCENARIOS].update_one({"_id": scenario_id}, {"$set": {"name": name}})
        return result.matched_count > 0

    async def add_category(self, tx: Tx, doc: Doc) -> None:
        await self.db[CATEGORIES].insert_one(doc, session=tx.session)

    async def update_category(self, tx: Tx, category_id: str, *, name: str, scenario_id: str) -> None:
        await self.db[CATEGORIES].update_one(
            {"_id": category_id}, {"$set": {"name": name, "scenario_id": scenario_id}}, session=tx.session
        )

    async def product_ids_in(self, tx: Tx, category_id: str) -> list[str]:
        cursor = self.db[PRODUCTS].find({"category_id": category_id}, {"_id": 1}, session=tx.session)
        return [p["_id"] async for p in cursor]

    async def add_product(self, tx: Tx, doc: Doc) -> None:
        await self.db[PRODUCTS].insert_one(doc, session=tx.session)

    async def update_product(self, tx: Tx, product_id: str, fields: Doc) -> Doc | None:
        """Apply `fields` and bump the product's revision; the product after, None if none."""
        doc: Doc | None = await self.db[PRODUCTS].find_one_and_update(
            {"_id": product_id},
            {"$set": fields, "$inc": {"revision": 1}},
            return_document=ReturnDocument.AFTER,
            session=tx.session,
        )
        return doc

    async def on_sale_sku_names(self, tx: Tx, product_id: str) -> list[str]:
        cursor = self.db[SKUS].find({"product_id": product_id, "on_sale": True}, {"name": 1}, session=tx.session)
        return [s["name"] async for s in cursor]

    async def set_listing(self, tx: Tx, product_id: str, *, sku_names: list[str], listed: bool) -> Doc | None:
        """Set the search names and the listing flag. When the flag flips the product's revision
        is bumped and the product after is returned (buyers now see it, or no longer do); None
        when it stays as it was."""
        flipped: Doc | None = await self.db[PRODUCTS].find_one_and_update(
            {"_id": product_id, "listed": {"$ne": listed}},
            {"$set": {"sku_names": sku_names, "listed": listed}, "$inc": {"revision": 1}},
            return_document=ReturnDocument.AFTER,
            session=tx.session,
        )
        if flipped is None:
            await self.db[PRODUCTS].update_one(
                {"_id": product_id}, {"$set": {"sku_names": sku_names}}, session=tx.session
            )
        return flipped

    async def add_sku(self, tx: Tx, doc: Doc) -> None:
        await self.db[SKUS].insert_one(doc, session=tx.session)

    async def set_observed_eta(self, tx: Tx, sku_id: str, seconds: int | None) -> None:
        """The p90 of the SKU's recent deliveries (measured by the order service); not part of
        the SKU's definition, so no new revision."""
        await tx.db[SKUS].update_one({"_id": sku_id}, {"$set": {"eta_observed_seconds": seconds}}, session=tx.session)

    async def update_sku(self, tx: Tx, sku_id: str, *, revision: int, changes: Doc) -> Doc | None:
        """Apply `changes` and bump the revision, only if the SKU is still at `revision` (None
        otherwise: someone else changed it since it was read)."""
        doc: Doc | None = await self.db[SKUS].find_one_and_update(
            {"_id": sku_id, "revision": revision},
            {"$set": changes, "$inc": {"revision": 1}},
            return_document=ReturnDocument.AFTER,
            session=tx.session,
        )
        return doc

    async def bump_revisions(self, tx: Tx, product_ids: list[str]) -> list[Doc]:
        """Give every SKU of these products a new revision; the SKUs as they are now."""
        cursor = self.db[SKUS].find({"product_id": {"$in": product_ids}}, {"_id": 1}, session=tx.session)
        bumped = []
        for sku_id in [s["_id"] async for s in cursor]:
            doc = await self.db[SKUS].find_one_and_update(
                {"_id": sku_id}, {"$inc": {"revision": 1}}, return_document=ReturnDocument.AFTER, session=tx.session
            )
            bumped.append(doc)
        return bumped

    async def products_by_id(self, tx: Tx, product_ids: list[str]) -> dict[str, Doc]:
        cursor = self.db[PRODUCTS].find({"_id": {"$in": product_ids}}, session=tx.session)
        return {p["_id"]: p async for p in cursor}

    async def categories_by_id(self, tx: Tx, category_ids: list[str]) -> dict[str, Doc]:
        cursor = self.db[CATEGORIES].find({"_id": {"$in": category_ids}}, session=tx.session)
        return {c["_id"]: c async for c in cursor}
