"""The caller's own in-app notifications (order delivered/refunded, ticket changes)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post

from services.support.deps import SupportDeps
from services.support.schemas import notification_view
from services.support.usecases import notifications
from shared.auth import Caller
from shared.paging import Page, Paging


class NotificationPage(Page[dict[str, Any]]):
    unread: int
    """How many of the caller's notifications are unread, whatever the filter."""


class NotificationsController(Controller):
    tags = ["notifications"]

    @get("/api/v1/notifications", summary="Your notifications, newest first")
    async def list_own(
        self, deps: SupportDeps, caller: Caller, paging: Paging, unread: bool = False
    ) -> NotificationPage:
        docs, total, unread_count = await notifications.list_own(
            deps, caller.user_id, unread_only=unread, skip=paging.skip, limit=paging.limit
        )
        page = paging.of([notification_view(d) for d in docs], total)
        return NotificationPage(
            items=page.items, page=page.page, page_size=page.page_size, total=page.total, unread=unread_count
        )

    @post("/api/v1/notifications/{notification_id:str}/read", status_code=200)
    async def mark_read(self, deps: SupportDeps, caller: Caller, notification_id: str) -> dict[str, Any]:
        return notification_view(await notifications.mark_read(deps, caller.user_id, notification_id))

    @post("/api/v1/notifications/read-all", status_code=200)
    async def mark_all_read(self, deps: SupportDeps, caller: Caller) -> dict[str, int]:
        return {"marked": await notifications.mark_all_read(deps, caller.user_id)}
