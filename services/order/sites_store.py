"""The order service's projection of agents' sub-sites (`catalog.site-changed`), collection
`sites` {_id: agent id, slug, title, markup_percent, prices, revision}, and the orders placed on
them (by `agent_id`). Kept apart from `store.py`: sub-sites are a small, separate concern."""

from __future__ import annotations

from typing import Any

import msgspec
from motor.motor_asyncio import AsyncIOMotorDatabase
from pymongo.errors import DuplicateKeyError

from services.order.store import ORDERS
from shared.contracts.catalog import SiteChanged
from shared.messaging.outbox import Tx
from shared.mongo import Index

SITES = "sites"
SITE_INDEXES: list[Index] = [
    Index(SITES, [("slug", 1)]),
    Index(ORDERS, [("agent_id", 1), ("created_at", -1)], {"sparse": True}),
]

Doc = dict[str, Any]


class SiteStore:
    def __init__(self, db: AsyncIOMotorDatabase[Any]) -> None:
        self.db = db

    async def upsert(self, tx: Tx, site: SiteChanged) -> bool:
        """Keep the newest revision of an agent's site; an older or repeated event changes nothing."""
        doc = msgspec.to_builtins(site)
        doc["_id"] = doc.pop("agent_id")
        try:
            result = await tx.db[SITES].replace_one(
                {"_id": doc["_id"], "revision": {"$lt": site.revision}}, doc, upsert=True, session=tx.session
            )
        except DuplicateKeyError:
            return False  # a newer revision is already there
        return bool(result.modified_count or result.upserted_id)

    async def by_slug(self, slug: str) -> Doc | None:
        """The site with this slug now (a slug moved between agents: the newest save has it)."""
        cursor = self.db[SITES].find({"slug": slug}).sort([("revision", -1)]).limit(1)
        docs = [d async for d in cursor]
        return docs[0] if docs else None

    async def agent_orders(self, agent_id: str, skip: int, limit: int) -> tuple[list[Doc], int]:
        query = {"agent_id": agent_id}
        cursor = self.db[ORDERS].find(query, {"history": 0}).sort([("created_at", -1)]).skip(skip).limit(limit)
        return [d async for d in cursor], await self.db[ORDERS].count_documents(query)
