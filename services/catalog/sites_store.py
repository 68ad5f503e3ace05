"""The catalog's MongoDB calls for agents' sub-sites (分站), collection `sites`:

    sites  {_id: agent id, slug (unique), title, markup_percent, prices {sku_id: cents},
            revision, updated_at}

One site per agent. A slug taken by another agent fails the unique index (409 upstream). Kept
apart from `store.py` so the sub-site reads never touch the product read path."""

from __future__ import annotations

from typing import Any

from motor.motor_asyncio import AsyncIOMotorDatabase
from pymongo import ReturnDocument

from services.catalog.store import PRODUCTS, SKUS, Doc
from shared.messaging.outbox import Tx
from shared.mongo import Index

SITES = "sites"
SITE_SKU_LIMIT = 500
"""A sub-site page lists at most this many SKUs (the platform's whole on-sale range today)."""

SITE_INDEXES: list[Index] = [Index(SITES, [("slug", 1)], {"unique": True})]


class SiteStore:
    def __init__(self, db: AsyncIOMotorDatabase[Any]) -> None:
        self.db = db

    async def of_agent(self, agent_id: str) -> Doc | None:
        doc: Doc | None = await self.db[SITES].find_one({"_id": agent_id})
        return doc

    async def by_slug(self, slug: str) -> Doc | None:
        doc: Doc | None = await self.db[SITES].find_one({"slug": slug})
        return doc

    async def save(self, tx: Tx, agent_id: str, fields: Doc) -> Doc:
        """Create or replace the agent's site; its revision grows by one per save."""
        doc: Doc = await tx.db[SITES].find_one_and_update(
            {"_id": agent_id},
            {"$set": fields, "$inc": {"revision": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=tx.session,
        )
        return doc

    async def skus(self, sku_ids: list[str], tx: Tx | None = None) -> dict[str, Doc]:
        cursor = self.db[SKUS].find({"_id": {"$in": sku_ids}}, {"prices": 1}, session=tx.session if tx else None)
        return {s["_id"]: s async for s in cursor}

    async def on_sale_range(self) -> tuple[list[Doc], list[Doc]]:
        """Listed products and their on-sale SKUs (what a sub-site sells), by name."""
        products = [
            p
            async for p in self.db[PRODUCTS]
            .find({"listed": True}, {"name": 1, "category_id": 1})
            .sort([("name", 1), ("_id", 1)])
            .limit(SITE_SKU_LIMIT)
        ]
        ids = [p["_id"] for p in products]
        skus = [
            s
            async for s in self.db[SKUS]
            .find({"product_id": {"$in": ids}, "on_sale": True})
            .sort([("face_value_cents", 1), ("_id", 1)])
            .limit(SITE_SKU_LIMIT)
        ]
        return products, skus
