"""Urges (催单) for staff: open urges, most urged and oldest first, with the order's tickets."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post

from services.support.deps import SupportDeps
from services.support.usecases import urges
from shared.auth import STAFF


class UrgesController(Controller):
    tags = ["urges (staff)"]
    guards = [STAFF]

    @get("/api/v1/admin/urges", summary="Open urges: most urged first, then the longest waiting")
    async def open_urges(self, deps: SupportDeps) -> dict[str, Any]:
        items = await urges.open_urges(deps)
        return {"items": items, "total": len(items)}

    @post("/api/v1/admin/urges/{order_id:str}/handle", status_code=200, summary="Take an urge off the list")
    async def handle(self, deps: SupportDeps, order_id: str) -> dict[str, Any]:
        await urges.handle_urge(deps, order_id)
        return {"order_id": order_id, "open": False}
