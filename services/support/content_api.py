"""Announcements (平台公告) and help-center articles (帮助中心): staff CRUD, public lists."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.params import Parameter

from services.support.store import ANNOUNCEMENTS, HELP_ARTICLES, page_args, public_id
from shared.auth import require_roles
from shared.contracts.envelope import new_id, utcnow
from shared.errors import not_found
from shared.runtime import Runtime

STAFF = [require_roles("admin", "staff")]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Body = Annotated[str, msgspec.Meta(min_length=1, max_length=50_000)]
Category = Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
PageNo = Annotated[int, Parameter(ge=1)]
PageSize = Annotated[int, Parameter(ge=1, le=100)]


class NewAnnouncement(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Title
    body: Body
    pinned: bool = False
    published: bool = True


class AnnouncementPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Title | None = None
    body: Body | None = None
    pinned: bool | None = None
    published: bool | None = None


class NewArticle(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Title
    body: Body
    category: Category = "general"
    position: int = 0
    published: bool = True


class ArticlePatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Title | None = None
    body: Body | None = None
    category: Category | None = None
    position: int | None = None
    published: bool | None = None


def _changes(patch_body: msgspec.Struct) -> dict[str, Any]:
    return {k: v for k, v in msgspec.structs.asdict(patch_body).items() if v is not None}


async def _page(
    runtime: Runtime,
    collection: str,
    query: dict[str, Any],
    sort: list[tuple[str, int]],
    id_name: str,
    page: int,
    size: int,
) -> dict[str, Any]:
    skip, limit = page_args(page, size)
    coll = runtime.mongo.db[collection]
    docs = await coll.find(query).sort(sort).skip(skip).limit(limit).to_list(None)
    total = await coll.count_documents(query)
    return {"items": [public_id(d, id_name) for d in docs], "page": page, "page_size": limit, "total": total}


ANNOUNCEMENT_ORDER = [("pinned", -1), ("published_at", -1), ("_id", 1)]
ARTICLE_ORDER = [("category", 1), ("position", 1), ("title", 1)]


class AnnouncementsController(Controller):
    tags = ["announcements"]

    @get("/api/v1/announcements", summary="Published announcements, pinned first, newest first")
    async def list_public(self, runtime: Runtime, page: PageNo = 1, page_size: PageSize = 20) -> dict[str, Any]:
        return await _page(
            runtime, ANNOUNCEMENTS, {"published": True}, ANNOUNCEMENT_ORDER, "announcement_id", page, page_size
        )

    @get("/api/v1/announcements/{announcement_id:str}")
    async def get_public(self, runtime: Runtime, announcement_id: str) -> dict[str, Any]:
        doc = await runtime.mongo.db[ANNOUNCEMENTS].find_one({"_id": announcement_id, "published": True})
        if doc is None:
            raise not_found("announcement")
        return public_id(doc, "announcement_id")

    @get("/api/v1/admin/announcements", guards=STAFF, summary="Every announcement, published or not")
    async def list_all(self, runtime: Runtime, page: PageNo = 1, page_size: PageSize = 20) -> dict[str, Any]:
        return await _page(runtime, ANNOUNCEMENTS, {}, ANNOUNCEMENT_ORDER, "announcement_id", page, page_size)

    @post("/api/v1/admin/announcements", guards=STAFF, status_code=201)
    async def create(self, runtime: Runtime, data: NewAnnouncement) -> dict[str, Any]:
        now = utcnow()
        doc = {
            "_id": new_id(),
            **msgspec.structs.asdict(data),
            "created_at": now,
            "updated_at": now,
            "published_at": now if data.published else None,
        }
        await runtime.mongo.db[ANNOUNCEMENTS].insert_one(doc)
        return public_id(doc, "announcement_id")

    @patch("/api/v1/admin/announcements/{announcement_id:str}", guards=STAFF)
    async def update(self, runtime: Runtime, announcement_id: str, data: AnnouncementPatch) -> dict[str, Any]:
        now = utcnow()
        coll = runtime.mongo.db[ANNOUNCEMENTS]
        doc = await coll.find_one_and_update(
            {"_id": announcement_id}, {"$set": {**_changes(data), "updated_at": now}}, return_document=True
        )
        if doc is not None and doc["published"] and doc.get("published_at") is None:
            # First publication stamps the date it is sorted by; re-publishing keeps it.
            doc["published_at"] = now
            await coll.update_one({"_id": announcement_id, "published_at": None}, {"$set": {"published_at": now}})
        if doc is None:
            raise not_found("announcement")
        return public_id(doc, "announcement_id")

    @delete("/api/v1/admin/announcements/{announcement_id:str}", guards=STAFF, status_code=204)
    async def remove(self, runtime: Runtime, announcement_id: str) -> Response[None]:
        result = await runtime.mongo.db[ANNOUNCEMENTS].delete_one({"_id": announcement_id})
        if result.deleted_count == 0:
            raise not_found("announcement")
        return Response(None, status_code=204)


class HelpController(Controller):
    tags = ["help center"]

    @get("/api/v1/help/articles", summary="Published help-center articles, by category and position")
    async def list_public(
        self, runtime: Runtime, page: PageNo = 1, page_size: PageSize = 20, category: str | None = None
    ) -> dict[str, Any]:
        query: dict[str, Any] = {"published": True}
        if category:
            query["category"] = category
        return await _page(runtime, HELP_ARTICLES, query, ARTICLE_ORDER, "article_id", page, page_size)

    @get("/api/v1/help/articles/{article_id:str}")
    async def get_public(self, runtime: Runtime, article_id: str) -> dict[str, Any]:
        doc = await runtime.mongo.db[HELP_ARTICLES].find_one({"_id": article_id, "published": True})
        if doc is None:
            raise not_found("article")
        return public_id(doc, "article_id")

    @get("/api/v1/admin/help/articles", guards=STAFF)
    async def list_all(self, runtime: Runtime, page: PageNo = 1, page_size: PageSize = 20) -> dict[str, Any]:
        return await _page(runtime, HELP_ARTICLES, {}, ARTICLE_ORDER, "article_id", page, page_size)

    @post("/api/v1/admin/help/articles", guards=STAFF, status_code=201)
    async def create(self, runtime: Runtime, data: NewArticle) -> dict[str, Any]:
        now = utcnow()
        doc = {"_id": new_id(), **msgspec.structs.asdict(data), "created_at": now, "updated_at": now}
        await runtime.mongo.db[HELP_ARTICLES].insert_one(doc)
        return public_id(doc, "article_id")

    @patch("/api/v1/admin/help/articles/{article_id:str}", guards=STAFF)
    async def update(self, runtime: Runtime, article_id: str, data: ArticlePatch) -> dict[str, Any]:
        doc = await runtime.mongo.db[HELP_ARTICLES].find_one_and_update(
            {"_id": article_id}, {"$set": {**_changes(data), "updated_at": utcnow()}}, return_document=True
        )
        if doc is None:
            raise not_found("article")
        return public_id(doc, "article_id")

    @delete("/api/v1/admin/help/articles/{article_id:str}", guards=STAFF, status_code=204)
    async def remove(self, runtime: Runtime, article_id: str) -> Response[None]:
        result = await runtime.mongo.db[HELP_ARTICLES].delete_one({"_id": article_id})
        if result.deleted_count == 0:
            raise not_found("article")
        return Response(None, status_code=204)
