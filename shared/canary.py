"""The bus canary: an operator's end-to-end check that events flow between services.

`POST /internal/canary` on any service writes a `platform.canary` event through that service's
outbox; every service (the sender too) consumes it and records a receipt in its own database.
`GET /internal/canary/{canary_id}` on a service says whether it got it. One trace spans the whole
trip, so it also shows an SRE where the bus is slow.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.params import JSONBody

from shared.contracts.envelope import new_id, utcnow
from shared.contracts.platform import Canary
from shared.errors import not_found
from shared.messaging.consumer import EventRouter, HandlerContext
from shared.messaging.outbox import Tx
from shared.runtime import Runtime

RECEIPTS = "canary_receipts"


class CanaryRequest(msgspec.Struct, kw_only=True):
    note: str = msgspec.field(default="")


class CanarySent(msgspec.Struct, kw_only=True):
    canary_id: str
    event_id: str


class CanaryReceipt(msgspec.Struct, kw_only=True):
    canary_id: str
    origin: str
    received_by: str
    event_id: str
    received_at: str


def canary_router(service: str) -> EventRouter:
    router = EventRouter(service)

    @router.handles(Canary)
    async def record_canary(event: Canary, ctx: HandlerContext) -> None:
        await ctx.tx.db[RECEIPTS].insert_one(
            {
                "_id": event.canary_id,
                "origin": event.origin,
                "event_id": ctx.envelope.event_id,
                "received_at": utcnow(),
            },
            session=ctx.tx.session,
        )

    return router


def canary_controller() -> type[Controller]:
    class CanaryController(Controller):
        path = "/internal/canary"
        tags = ["operations"]

        @post("/", summary="Send a canary event through the outbox and the bus")
        async def send(self, runtime: Runtime, data: JSONBody[CanaryRequest | None] = None) -> CanarySent:
            canary_id = new_id()
            name = runtime.settings.service_name

            async def write(tx: Tx) -> str:
                return tx.emit(Canary(canary_id=canary_id, origin=name, note=(data.note if data else ""))).event_id

            event_id = await runtime.uow.run(write)
            return CanarySent(canary_id=canary_id, event_id=event_id)

        @get("/{canary_id:str}", summary="Did this service receive the canary?")
        async def receipt(self, runtime: Runtime, canary_id: str) -> CanaryReceipt:
            doc: dict[str, Any] | None = await runtime.mongo.db[RECEIPTS].find_one({"_id": canary_id})
            if doc is None:
                raise not_found("canary receipt")
            return CanaryReceipt(
                canary_id=canary_id,
                origin=doc["origin"],
                event_id=doc["event_id"],
                received_by=runtime.settings.service_name,
                received_at=doc["received_at"].isoformat(),
            )

    return CanaryController
