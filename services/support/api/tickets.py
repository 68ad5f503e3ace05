"""After-sales tickets (售后申请): the buyer's side and the staff queue and resolution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.response import Stream

from services.support import domain
from services.support.deps import SupportDeps
from services.support.schemas import NewMessage, NewTicket, ResolveRequest, resolved_view, ticket_view
from services.support.usecases import tickets
from shared.auth import STAFF, Caller
from shared.contracts.envelope import utcnow
from shared.errors import validation_problem
from shared.idempotency import IdempotencyHeader, idempotency_key
from shared.paging import Page, Paging


@dataclass
class NewTicketBody(Operation):
    """The ticket's body in the document: JSON (`NewTicket`), or the same fields as a form with
    evidence files. The handler reads either itself, so Litestar cannot infer it."""

    def __post_init__(self) -> None:
        # msgspec's JSON Schema of the struct is what OpenAPI 3.1 takes as a schema object.
        fields = msgspec.json.schema_components([NewTicket])[1]["NewTicket"]
        form = {
            **{k: v for k, v in fields.items() if k != "additionalProperties"},  # other form fields are ignored
            "properties": {
                **fields["properties"],
                "evidence": Schema(
                    type=OpenAPIType.ARRAY,
                    items=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY),
                    description="screenshots or photos: PNG, JPEG, GIF or WebP",
                ),
            },
        }
        self.request_body = RequestBody(
            required=True,
            content={
                "application/json": OpenAPIMediaType(schema=cast("Schema", fields)),
                "multipart/form-data": OpenAPIMediaType(schema=cast("Schema", form)),
            },
        )


async def _read_new_ticket(request: Request[Any, Any, Any]) -> tuple[NewTicket, list[tuple[str, bytes]]]:
    """The ticket fields and evidence files from a JSON or multipart/form-data body."""
    content_type = request.headers.get("content-type", "")
    files: list[tuple[str, bytes]] = []
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        fields: dict[str, Any] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files.append((value.filename or "", await value.read()))
            elif key in ("order_id", "kind", "description"):
                fields[key] = value
        raw = msgspec.json.encode(fields)
    else:
        raw = await request.body()
    try:
        return msgspec.json.decode(raw, type=NewTicket), files
    except msgspec.ValidationError as exc:
        field = str(exc).rsplit("`$.", 1)[-1].rstrip("`") if "`$." in str(exc) else "body"
        raise validation_problem([{"field": field, "message": str(exc)}]) from exc
    except msgspec.DecodeError as exc:
        raise validation_problem([{"field": "body", "message": "not valid JSON"}]) from exc


class TicketsController(Controller):
    tags = ["after-sales"]

    @post(
        "/api/v1/tickets",
        status_code=201,
        summary="Open an after-sales request on your own order",
        operation_class=NewTicketBody,
    )
    async def open_ticket(
        self,
        deps: SupportDeps,
        caller: Caller,
        request: Request[Any, Any, Any],
        idempotency: IdempotencyHeader = None,
    ) -> dict[str, Any]:
        key = idempotency_key(idempotency)
        data, files = await _read_new_ticket(request)
        new = tickets.OpenTicket(order_id=data.order_id, kind=data.kind, description=data.description, files=files)
        return await tickets.open_ticket(deps, caller, new, key=key)

    @get("/api/v1/tickets", summary="Your after-sales requests, newest first")
    async def list_own(self, deps: SupportDeps, caller: Caller, paging: Paging) -> Page[dict[str, Any]]:
        docs, total = await tickets.list_own(deps, caller, skip=paging.skip, limit=paging.limit)
        now = utcnow()
        return paging.of([ticket_view(d, now, full=False) for d in docs], total)

    @get("/api/v1/tickets/{ticket_id:str}")
    async def get_ticket(self, deps: SupportDeps, caller: Caller, ticket_id: str) -> dict[str, Any]:
        return ticket_view(await tickets.own_ticket(deps, caller, ticket_id), utcnow(), full=True)

    @get("/api/v1/tickets/{ticket_id:str}/evidence/{file_id:str}", summary="Download one evidence file")
    async def evidence(self, deps: SupportDeps, caller: Caller, ticket_id: str, file_id: str) -> Stream:
        content_type, chunks = await tickets.evidence_file(deps, caller, ticket_id, file_id)
        return Stream(chunks, media_type=content_type, headers={"X-Content-Type-Options": "nosniff"})

    @post("/api/v1/tickets/{ticket_id:str}/messages", status_code=201, summary="Add a message to the thread")
    async def add_message(self, deps: SupportDeps, caller: Caller, ticket_id: str, data: NewMessage) -> dict[str, Any]:
        return await tickets.add_message(deps, caller, ticket_id, data.body)


class StaffTicketsController(Controller):
    tags = ["after-sales (staff)"]
    guards = [STAFF]

    @get(
        "/api/v1/admin/tickets",
        summary="The staff queue: urged orders first, then overdue, then by due time",
    )
    async def queue(self, deps: SupportDeps, paging: Paging, status: str = "open,answered") -> Page[dict[str, Any]]:
        queue = await tickets.staff_queue(deps, [s for s in status.split(",") if s])
        now = utcnow()
        views = [{**ticket_view(doc, now, full=False), "urged": urges > 0, "urge_count": urges} for doc, urges in queue]
        return paging.slice(views)

    @post("/api/v1/admin/tickets/{ticket_id:str}/resolve", status_code=200)
    async def resolve(self, deps: SupportDeps, caller: Caller, ticket_id: str, data: ResolveRequest) -> dict[str, Any]:
        resolution = domain.Resolution(action=data.action, note=data.note, quantity=data.quantity)
        return resolved_view(await tickets.resolve(deps, caller.user_id, ticket_id, resolution))
