"""Urges (催单) for staff: open urges, most urged and oldest first, with the order's tickets."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post

from services.support.store import ORDERS, TICKETS, URGES
from shared.auth import require_roles
from shared.contracts.envelope import utcnow
from shared.errors import not_found
from shared.runtime import Runtime


class UrgesController(Controller):
    tags = ["urges (staff)"]
    guards = [require_roles("admin", "staff")]

    @get("/api/v1/admin/urges", summary="Open urges: most urged first, then the longest waiting")
    async def open_urges(self, runtime: Runtime) -> dict[str, Any]:
        db = runtime.mongo.db
        urges = await db[URGES].find({"open": True}).sort([("count", -1), ("first_urged_at", 1)]).to_list(500)
        order_ids = [u["_id"] for u in urges]
        orders = {o["_id"]: o for o in await db[ORDERS].find({"_id": {"$in": order_ids}}).to_list(None)}
        tickets: dict[str, list[str]] = {}
        for t in await db[TICKETS].find({"order_id": {"$in": order_ids}}, {"order_id": 1}).to_list(None):
            tickets.setdefault(t["order_id"], []).append(t["_id"])
        items = [
            {
                "order_id": u["_id"],
                "user_id": u["user_id"],
                "count": u["count"],
                "first_urged_at": u["first_urged_at"],
                "last_urged_at": u["last_urged_at"],
                "order_status": (orders.get(u["_id"]) or {}).get("status", u.get("order_status")),
                "ticket_ids": tickets.get(u["_id"], []),
            }
            for u in urges
        ]
        return {"items": items, "total": len(items)}

    @post("/api/v1/admin/urges/{order_id:str}/handle", status_code=200, summary="Take an urge off the list")
    async def handle(self, runtime: Runtime, order_id: str) -> dict[str, Any]:
        result = await runtime.mongo.db[URGES].update_one(
            {"_id": order_id}, {"$set": {"open": False, "closed_at": utcnow(), "closed_because": "handled"}}
        )
        if result.matched_count == 0:
            raise not_found("urge")
        return {"order_id": order_id, "open": False}
