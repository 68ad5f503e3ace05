"""Announcements (平台公告) and help-center articles (帮助中心): public lists, staff CRUD."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Response, delete, get, patch, post

from services.support.deps import SupportDeps
from services.support.schemas import (
    AnnouncementPatch,
    ArticlePatch,
    NewAnnouncement,
    NewArticle,
    changes_of,
    public_id,
)
from services.support.usecases import content
from shared.auth import STAFF
from shared.paging import Page, Paging

ANNOUNCEMENT_ID = "announcement_id"
ARTICLE_ID = "article_id"


class AnnouncementsController(Controller):
    tags = ["announcements"]

    @get("/api/v1/announcements", summary="Published announcements, pinned first, newest first")
    async def list_public(self, deps: SupportDeps, paging: Paging) -> Page[dict[str, Any]]:
        docs, total = await content.page(
            deps, "announcement", published_only=True, skip=paging.skip, limit=paging.limit
        )
        return paging.of([public_id(d, ANNOUNCEMENT_ID) for d in docs], total)

    @get("/api/v1/announcements/{announcement_id:str}")
    async def get_public(self, deps: SupportDeps, announcement_id: str) -> dict[str, Any]:
        return public_id(await content.get_published(deps, "announcement", announcement_id), ANNOUNCEMENT_ID)

    @get("/api/v1/admin/announcements", guards=[STAFF], summary="Every announcement, published or not")
    async def list_all(self, deps: SupportDeps, paging: Paging) -> Page[dict[str, Any]]:
        docs, total = await content.page(
            deps, "announcement", published_only=False, skip=paging.skip, limit=paging.limit
        )
        return paging.of([public_id(d, ANNOUNCEMENT_ID) for d in docs], total)

    @post("/api/v1/admin/announcements", guards=[STAFF], status_code=201)
    async def create(self, deps: SupportDeps, data: NewAnnouncement) -> dict[str, Any]:
        return public_id(await content.create(deps, "announcement", msgspec.structs.asdict(data)), ANNOUNCEMENT_ID)

    @patch("/api/v1/admin/announcements/{announcement_id:str}", guards=[STAFF])
    async def update(self, deps: SupportDeps, announcement_id: str, data: AnnouncementPatch) -> dict[str, Any]:
        doc = await content.update(deps, "announcement", announcement_id, changes_of(data))
        return public_id(doc, ANNOUNCEMENT_ID)

    @delete("/api/v1/admin/announcements/{announcement_id:str}", guards=[STAFF], status_code=204)
    async def remove(self, deps: SupportDeps, announcement_id: str) -> Response[None]:
        await content.remove(deps, "announcement", announcement_id)
        return Response(None, status_code=204)


class HelpController(Controller):
    tags = ["help center"]

    @get("/api/v1/help/articles", summary="Published help-center articles, by category and position")
    async def list_public(self, deps: SupportDeps, paging: Paging, category: str | None = None) -> Page[dict[str, Any]]:
        docs, total = await content.page(
            deps, "article", published_only=True, category=category, skip=paging.skip, limit=paging.limit
        )
        return paging.of([public_id(d, ARTICLE_ID) for d in docs], total)

    @get("/api/v1/help/articles/{article_id:str}")
    async def get_public(self, deps: SupportDeps, article_id: str) -> dict[str, Any]:
        return public_id(await content.get_published(deps, "article", article_id), ARTICLE_ID)

    @get("/api/v1/admin/help/articles", guards=[STAFF])
    async def list_all(self, deps: SupportDeps, paging: Paging) -> Page[dict[str, Any]]:
        docs, total = await content.page(deps, "article", published_only=False, skip=paging.skip, limit=paging.limit)
        return paging.of([public_id(d, ARTICLE_ID) for d in docs], total)

    @post("/api/v1/admin/help/articles", guards=[STAFF], status_code=201)
    async def create(self, deps: SupportDeps, data: NewArticle) -> dict[str, Any]:
        return public_id(await content.create(deps, "article", msgspec.structs.asdict(data)), ARTICLE_ID)

    @patch("/api/v1/admin/help/articles/{article_id:str}", guards=[STAFF])
    async def update(self, deps: SupportDeps, article_id: str, data: ArticlePatch) -> dict[str, Any]:
        return public_id(await content.update(deps, "article", article_id, changes_of(data)), ARTICLE_ID)

    @delete("/api/v1/admin/help/articles/{article_id:str}", guards=[STAFF], status_code=204)
    async def remove(self, deps: SupportDeps, article_id: str) -> Response[None]:
        await content.remove(deps, "article", article_id)
        return Response(None, status_code=204)
