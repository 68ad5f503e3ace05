"""Announcements (平台公告) and help-center articles (帮助中心). Every write runs in the use case's
transaction, with the `support.*-changed` event it emits."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from pymongo import ReturnDocument

from services.support.store.schema import ANNOUNCEMENTS, HELP_ARTICLES, Collections
from shared.messaging.outbox import Tx

ContentKind = Literal["announcement", "article"]

_COLLECTION: dict[ContentKind, str] = {"announcement": ANNOUNCEMENTS, "article": HELP_ARTICLES}
_ORDER: dict[ContentKind, list[tuple[str, int]]] = {
    # Pinned first, then newest; articles by category, position, title.
    "announcement": [("pinned", -1), ("published_at", -1), ("_id", 1)],
    "article": [("category", 1), ("position", 1), ("title", 1)],
}


class ContentStore(Collections):
    async def content_page(
        self, kind: ContentKind, query: dict[str, Any], *, skip: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        coll = self.db[_COLLECTION[kind]]
        docs = await coll.find(query).sort(_ORDER[kind]).skip(skip).limit(limit).to_list(None)
        return docs, await coll.count_documents(query)

    async def content(self, kind: ContentKind, content_id: str, *, published_only: bool) -> dict[str, Any] | None:
        query: dict[str, Any] = {"_id": content_id, **({"published": True} if published_only else {})}
        return cast(dict[str, Any] | None, await self.db[_COLLECTION[kind]].find_one(query))

    async def add_content(self, kind: ContentKind, doc: dict[str, Any], *, tx: Tx) -> None:
        await self.db[_COLLECTION[kind]].insert_one(doc, session=tx.session)

    async def change_content(
        self, kind: ContentKind, content_id: str, changes: dict[str, Any], *, tx: Tx
    ) -> dict[str, Any] | None:
        """Apply `changes`; the document after them, None if there is none."""
        doc = await self.db[_COLLECTION[kind]].find_one_and_update(
            {"_id": content_id}, {"$set": changes}, return_document=ReturnDocument.AFTER, session=tx.session
        )
        return cast(dict[str, Any] | None, doc)

    async def stamp_published(self, kind: ContentKind, content_id: str, at: datetime, *, tx: Tx) -> None:
        """Set the first publication date; a later one never replaces it."""
        await self.db[_COLLECTION[kind]].update_one(
            {"_id": content_id, "published_at": None}, {"$set": {"published_at": at}}, session=tx.session
        )

    async def remove_content(self, kind: ContentKind, content_id: str, *, tx: Tx) -> dict[str, Any] | None:
        """Delete it; the document as it was, None if there was none."""
        doc = await self.db[_COLLECTION[kind]].find_one_and_delete({"_id": content_id}, session=tx.session)
        return cast(dict[str, Any] | None, doc)
