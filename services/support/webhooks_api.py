"""Partner webhooks: register URLs (the secret is shown once), list, delete; the delivery log,
the dead-letter list and replay, for the partner and for staff."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, cast

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.params import Parameter

from services.support import domain
from services.support.settings import SupportSettings
from services.support.store import DELIVERIES, WEBHOOKS, page_args
from shared.auth import Caller, require_roles
from shared.contracts.envelope import new_id, utcnow
from shared.errors import Problem, not_found, validation_problem
from shared.runtime import Runtime

STAFF = [require_roles("admin", "staff")]
PageNo = Annotated[int, Parameter(ge=1)]
PageSize = Annotated[int, Parameter(ge=1, le=100)]
DELIVERY_STATUSES = ("pending", "delivered", "dead", "cancelled")


class NewWebhook(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    events: list[str] = msgspec.field(default_factory=lambda: ["order.status-changed"])


def webhook_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "webhook_id": doc["_id"],
        "url": doc["url"],
        "events": doc["events"],
        "created_at": doc["created_at"],
    }


def delivery_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "delivery_id": doc["_id"],
        "webhook_id": doc["webhook_id"],
        "event_id": doc["event_id"],
        "order_id": doc["order_id"],
        "status": doc["status"],
        "attempts": doc.get("attempts", 0),
        "next_attempt_at": doc.get("next_attempt_at") if doc["status"] == "pending" else None,
        "created_at": doc["created_at"],
        "delivered_at": doc.get("delivered_at"),
        "log": doc.get("log", []),
        "payload": msgspec.json.decode(bytes(doc["payload"])),
    }


async def _replay(runtime: Runtime, query: dict[str, Any]) -> dict[str, Any]:
    """Queue a dead (or delivered) delivery again, attempts reset; a pending one is left alone."""
    coll = runtime.mongo.db[DELIVERIES]
    doc = await coll.find_one_and_update(
        {**query, "status": {"$in": ["dead", "delivered"]}},
        {
            "$set": {"status": "pending", "attempts": 0, "next_attempt_at": utcnow()},
            "$push": {"log": {"at": utcnow(), "status_code": None, "error": "replay requested", "duration_ms": 0}},
            "$unset": {"dead_at": ""},
        },
        return_document=True,
    )
    if doc is None:
        doc = await coll.find_one(query)
        if doc is None:
            raise not_found("delivery")
        if doc["status"] != "pending":
            raise Problem(409, "not-replayable", "Conflict", f"a {doc['status']} delivery cannot be replayed")
    return delivery_view(doc)


class PartnerWebhooksController(Controller):
    tags = ["partner webhooks"]

    @post("/api/v1/partner/webhooks", status_code=201, summary="Register a webhook; the secret is shown only here")
    async def create(self, runtime: Runtime, caller: Caller, data: NewWebhook) -> dict[str, Any]:
        settings = cast(SupportSettings, runtime.settings)
        events = list(dict.fromkeys(data.events))
        errors = domain.check_webhook(data.url, events, require_https=settings.environment == "prod")
        if errors:
            raise validation_problem(errors)
        coll = runtime.mongo.db[WEBHOOKS]
        if await coll.count_documents({"partner_user_id": caller.user_id}) >= settings.webhook_max_per_partner:
            raise Problem(409, "too-many-webhooks", "Conflict", f"at most {settings.webhook_max_per_partner} webhooks")
        secret = secrets.token_hex(32)
        doc = {
            "_id": new_id(),
            "partner_user_id": caller.user_id,
            "url": data.url,
            "events": events,
            "secret": secret,
            "created_at": utcnow(),
        }
        await coll.insert_one(doc)
        return {**webhook_view(doc), "secret": secret}

    @get("/api/v1/partner/webhooks")
    async def list_own(self, runtime: Runtime, caller: Caller) -> dict[str, Any]:
        docs = (
            await runtime.mongo.db[WEBHOOKS]
            .find({"partner_user_id": caller.user_id})
            .sort("created_at", 1)
            .to_list(None)
        )
        return {"items": [webhook_view(d) for d in docs]}

    @delete("/api/v1/partner/webhooks/{webhook_id:str}", status_code=204)
    async def remove(self, runtime: Runtime, caller: Caller, webhook_id: str) -> Response[None]:
        db = runtime.mongo.db
        result = await db[WEBHOOKS].delete_one({"_id": webhook_id, "partner_user_id": caller.user_id})
        if result.deleted_count == 0:
            raise not_found("webhook")
        await db[DELIVERIES].update_many(
            {"webhook_id": webhook_id, "status": "pending"}, {"$set": {"status": "cancelled"}}
        )
        return Response(None, status_code=204)

    @get("/api/v1/partner/webhooks/{webhook_id:str}/deliveries", summary="Delivery log, newest first")
    async def deliveries(
        self,
        runtime: Runtime,
        caller: Caller,
        webhook_id: str,
        page: PageNo = 1,
        page_size: PageSize = 20,
        status: str | None = None,
    ) -> dict[str, Any]:
        db = runtime.mongo.db
        if await db[WEBHOOKS].count_documents({"_id": webhook_id, "partner_user_id": caller.user_id}) == 0:
            raise not_found("webhook")
        query: dict[str, Any] = {"webhook_id": webhook_id}
        if status:
            if status not in DELIVERY_STATUSES:
                raise validation_problem([{"field": "status", "message": f"one of {', '.join(DELIVERY_STATUSES)}"}])
            query["status"] = status
        skip, limit = page_args(page, page_size)
        docs = (
            await db[DELIVERIES]
            .find(query)
            .sort([("created_at", -1), ("_id", 1)])
            .skip(skip)
            .limit(limit)
            .to_list(None)
        )
        return {
            "items": [delivery_view(d) for d in docs],
            "page": page,
            "page_size": limit,
            "total": await db[DELIVERIES].count_documents(query),
        }

    @post("/api/v1/partner/webhooks/{webhook_id:str}/deliveries/{delivery_id:str}/replay", status_code=200)
    async def replay(self, runtime: Runtime, caller: Caller, webhook_id: str, delivery_id: str) -> dict[str, Any]:
        return await _replay(runtime, {"_id": delivery_id, "webhook_id": webhook_id, "partner_user_id": caller.user_id})


class StaffWebhooksController(Controller):
    tags = ["partner webhooks (staff)"]
    guards = STAFF

    @get("/api/v1/admin/webhook-deliveries", summary="Deliveries by status (default: the dead-letter list)")
    async def list_deliveries(
        self, runtime: Runtime, page: PageNo = 1, page_size: PageSize = 20, status: str = "dead"
    ) -> dict[str, Any]:
        if status not in DELIVERY_STATUSES:
            raise validation_problem([{"field": "status", "message": f"one of {', '.join(DELIVERY_STATUSES)}"}])
        skip, limit = page_args(page, page_size)
        coll = runtime.mongo.db[DELIVERIES]
        docs = await coll.find({"status": status}).sort([("created_at", 1)]).skip(skip).limit(limit).to_list(None)
        return {
            "items": [delivery_view(d) for d in docs],
            "page": page,
            "page_size": limit,
            "total": await coll.count_documents({"status": status}),
        }

    @post("/api/v1/admin/webhook-deliveries/{delivery_id:str}/replay", status_code=200)
    async def replay(self, runtime: Runtime, delivery_id: str) -> dict[str, Any]:
        return await _replay(runtime, {"_id": delivery_id})
