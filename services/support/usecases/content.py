"""Announcements (平台公告) and help-center articles (帮助中心): staff CRUD, public reading.
Unpublished ones do not exist for the public.

Every create, edit and deletion emits `support.article-changed` / `support.announcement-changed`
(the document's public state after it) in the same transaction, so what the public sees and
what consumers (the assistant's index) learn cannot disagree."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.support.deps import SupportDeps
from services.support.store import ContentKind
from shared.contracts.envelope import new_id, utcnow
from shared.contracts.support import AnnouncementChanged, ArticleChanged
from shared.errors import not_found
from shared.messaging.outbox import Tx


async def page(
    deps: SupportDeps, kind: ContentKind, *, published_only: bool, skip: int, limit: int, category: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    query: dict[str, Any] = {}
    if published_only:
        query["published"] = True
    if category:
        query["category"] = category
    return await deps.store.content_page(kind, query, skip=skip, limit=limit)


async def get_published(deps: SupportDeps, kind: ContentKind, content_id: str) -> dict[str, Any]:
    doc = await deps.store.content(kind, content_id, published_only=True)
    if doc is None:
        raise not_found(kind)
    return doc


def changed(
    kind: ContentKind, doc: dict[str, Any], *, deleted: bool = False, at: datetime | None = None
) -> ArticleChanged | AnnouncementChanged:
    """The event of a stored document's public state (`at`: when it was deleted)."""
    published = bool(doc.get("published")) and not deleted
    updated_at = at or doc["updated_at"]
    if kind == "article":
        return ArticleChanged(
            article_id=doc["_id"],
            published=published,
            deleted=deleted,
            title=doc["title"],
            body=doc["body"],
            category=doc.get("category", "general"),
            position=int(doc.get("position", 0)),
            updated_at=updated_at,
        )
    return AnnouncementChanged(
        announcement_id=doc["_id"],
        published=published,
        deleted=deleted,
        title=doc["title"],
        body=doc["body"],
        pinned=bool(doc.get("pinned")),
        published_at=doc.get("published_at"),
        updated_at=updated_at,
    )


async def create(deps: SupportDeps, kind: ContentKind, fields: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    doc = {"_id": new_id(), **fields, "created_at": now, "updated_at": now}
    if kind == "announcement":
        # Announcements are sorted by when they were first published.
        doc["published_at"] = now if fields.get("published") else None

    async def write(tx: Tx) -> None:
        await deps.store.add_content(kind, doc, tx=tx)
        tx.emit(changed(kind, doc))

    await deps.uow.run(write)
    return doc


async def update(deps: SupportDeps, kind: ContentKind, content_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()

    async def write(tx: Tx) -> dict[str, Any]:
        doc = await deps.store.change_content(kind, content_id, {**changes, "updated_at": now}, tx=tx)
        if doc is None:
            raise not_found(kind)
        if kind == "announcement" and doc["published"] and doc.get("published_at") is None:
            # First publication stamps the date it is sorted by; re-publishing keeps it.
            doc["published_at"] = now
            await deps.store.stamp_published(kind, content_id, now, tx=tx)
        tx.emit(changed(kind, doc))
        return doc

    return await deps.uow.run(write)


async def remove(deps: SupportDeps, kind: ContentKind, content_id: str) -> None:
    now = utcnow()

    async def write(tx: Tx) -> None:
        doc = await deps.store.remove_content(kind, content_id, tx=tx)
        if doc is None:
            raise not_found(kind)
        tx.emit(changed(kind, doc, deleted=True, at=now))

    await deps.uow.run(write)
