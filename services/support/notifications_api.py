"""The caller's own in-app notifications (order delivered/refunded, ticket changes)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import Parameter

from services.support.store import NOTIFICATIONS, page_args
from shared.auth import Caller
from shared.contracts.envelope import utcnow
from shared.errors import not_found
from shared.runtime import Runtime

PageNo = Annotated[int, Parameter(ge=1)]
PageSize = Annotated[int, Parameter(ge=1, le=100)]


def notification_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "notification_id": doc["_id"],
        "kind": doc["kind"],
        "subject": doc["subject"],
        "body": doc["body"],
        "ref": doc.get("ref", {}),
        "created_at": doc["created_at"],
        "read": doc.get("read_at") is not None,
        "read_at": doc.get("read_at"),
        "email_status": (doc.get("email") or {}).get("status"),
    }


class NotificationsController(Controller):
    tags = ["notifications"]

    @get("/api/v1/notifications", summary="Your notifications, newest first")
    async def list_own(
        self, runtime: Runtime, caller: Caller, page: PageNo = 1, page_size: PageSize = 20, unread: bool = False
    ) -> dict[str, Any]:
        query: dict[str, Any] = {"user_id": caller.user_id}
        if unread:
            query["read_at"] = None
        skip, limit = page_args(page, page_size)
        coll = runtime.mongo.db[NOTIFICATIONS]
        docs = await coll.find(query).sort([("created_at", -1)]).skip(skip).limit(limit).to_list(None)
        return {
            "items": [notification_view(d) for d in docs],
            "page": page,
            "page_size": limit,
            "total": await coll.count_documents(query),
            "unread": await coll.count_documents({"user_id": caller.user_id, "read_at": None}),
        }

    @post("/api/v1/notifications/{notification_id:str}/read", status_code=200)
    async def mark_read(self, runtime: Runtime, caller: Caller, notification_id: str) -> dict[str, Any]:
        coll = runtime.mongo.db[NOTIFICATIONS]
        # Owner in the filter: someone else's notification is simply not found.
        await coll.update_one(
            {"_id": notification_id, "user_id": caller.user_id, "read_at": None}, {"$set": {"read_at": utcnow()}}
        )
        doc = await coll.find_one({"_id": notification_id, "user_id": caller.user_id})
        if doc is None:
            raise not_found("notification")
        return notification_view(doc)

    @post("/api/v1/notifications/read-all", status_code=200)
    async def mark_all_read(self, runtime: Runtime, caller: Caller) -> dict[str, int]:
        result = await runtime.mongo.db[NOTIFICATIONS].update_many(
            {"user_id": caller.user_id, "read_at": None}, {"$set": {"read_at": utcnow()}}
        )
        return {"marked": result.modified_count}
