"""After-sales tickets (售后申请): a buyer opens one on an own order with evidence files, talks
with staff in a message thread, and staff resolve it with a reissue, a refund or a rejection.

Ownership comes from the `orders` projection (order.status-changed): a ticket on an order that
is not the caller's, or unknown, is 404 and nothing is stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, cast

import msgspec
from bson import ObjectId
from bson.errors import InvalidId
from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import Parameter
from litestar.response import Stream
from motor.motor_asyncio import AsyncIOMotorGridFSBucket
from pymongo.errors import DuplicateKeyError

from services.support import domain
from services.support.notices import notify
from services.support.settings import SupportSettings
from services.support.store import EVIDENCE_BUCKET, ORDERS, TICKET_KEYS, TICKETS, URGES, page_args
from shared.auth import Caller, require_roles
from shared.contracts.envelope import new_id, utcnow
from shared.contracts.support import RefundApproved, ReissueRequested, TicketOpened, TicketResolved
from shared.errors import Problem, not_found, validation_problem
from shared.messaging.outbox import Tx
from shared.runtime import Runtime

STAFF = [require_roles("admin", "staff")]
PageNo = Annotated[int, Parameter(ge=1)]
PageSize = Annotated[int, Parameter(ge=1, le=100)]
DESCRIPTION_MAX = 5000
MESSAGE_MAX = 5000


class NewTicket(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    kind: domain.TicketKindName
    description: Annotated[str, msgspec.Meta(min_length=1, max_length=DESCRIPTION_MAX)]


class NewMessage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=MESSAGE_MAX)]


class ResolveRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    action: domain.ResolveActionName
    note: Annotated[str, msgspec.Meta(max_length=MESSAGE_MAX)] = ""
    quantity: int | None = None
    """Reissue only: how many keys to replace (default: the order's quantity)."""


def settings_of(runtime: Runtime) -> SupportSettings:
    return cast(SupportSettings, runtime.settings)


def problem_of(exc: domain.RuleViolation) -> Problem:
    if exc.status == 404:
        return not_found("order")
    if exc.status == 422:
        return validation_problem([{"field": exc.field or "body", "message": exc.detail}], exc.detail)
    return Problem(exc.status, exc.slug, "Conflict", exc.detail)


def ticket_view(doc: dict[str, Any], now: datetime, *, full: bool) -> dict[str, Any]:
    view = {
        "ticket_id": doc["_id"],
        "order_id": doc["order_id"],
        "user_id": doc["user_id"],
        "kind": doc["kind"],
        "status": doc["status"],
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
        "due_at": doc.get("due_at"),
        "overdue": domain.is_overdue(doc, now),
        "resolution": doc.get("resolution"),
    }
    if full:
        view.update(
            description=doc["description"],
            messages=doc.get("messages", []),
            evidence=doc.get("evidence", []),
            history=doc.get("history", []),
        )
    return view


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


async def _repeat_of(runtime: Runtime, user_id: str, key: str, fingerprint: str) -> dict[str, Any] | None:
    """The answer to an earlier request with this Idempotency-Key, or None; 422 for the same key
    with another body."""
    if not 1 <= len(key) <= 200:
        raise validation_problem([{"field": "Idempotency-Key", "message": "1 to 200 characters"}])
    seen = await runtime.mongo.db[TICKET_KEYS].find_one({"_id": f"{user_id}:{key}"})
    if seen is None:
        return None
    if seen["fingerprint"] != fingerprint:
        raise validation_problem(
            [{"field": "Idempotency-Key", "message": "already used for a different request"}],
            "the Idempotency-Key was used with another body",
        )
    ticket = await runtime.mongo.db[TICKETS].find_one({"_id": seen["ticket_id"]}, {"status": 1})
    return {"ticket_id": seen["ticket_id"], "status": ticket["status"] if ticket else "open"}


async def _own_ticket(runtime: Runtime, caller: Caller, ticket_id: str, *, session: Any = None) -> dict[str, Any]:
    doc = await runtime.mongo.db[TICKETS].find_one({"_id": ticket_id}, session=session)
    if doc is None or (doc["user_id"] != caller.user_id and not caller.is_staff):
        raise not_found("ticket")
    return cast(dict[str, Any], doc)


class TicketsController(Controller):
    tags = ["after-sales"]

    @post("/api/v1/tickets", status_code=201, summary="Open an after-sales request on your own order")
    async def open_ticket(self, runtime: Runtime, caller: Caller, request: Request[Any, Any, Any]) -> dict[str, Any]:
        settings = settings_of(runtime)
        data, files = await _read_new_ticket(request)
        errors = domain.check_evidence(
            files,
            max_bytes=settings.evidence_max_bytes,
            max_files=settings.evidence_max_files,
            allowed=settings.evidence_type_set,
        )
        if errors:
            raise validation_problem(errors, "the evidence files are not acceptable")
        idem_key = request.headers.get("idempotency-key")
        fingerprint = domain.ticket_fingerprint(data.order_id, data.kind, data.description, [b for _, b in files])
        if idem_key is not None:
            repeat = await _repeat_of(runtime, caller.user_id, idem_key, fingerprint)
            if repeat is not None:
                return repeat
        order = await runtime.mongo.db[ORDERS].find_one({"_id": data.order_id})
        try:
            domain.check_ticketable(order, caller.user_id)
        except domain.RuleViolation as exc:
            raise problem_of(exc) from exc

        ticket_id = new_id()
        # GridFS refuses transactions, so the files go first and the ticket that references
        # them commits after; if that fails the files are removed again. (A crash in between
        # leaves files no ticket names: their metadata.ticket_id finds them.)
        bucket = AsyncIOMotorGridFSBucket(runtime.mongo.db, bucket_name=EVIDENCE_BUCKET)
        evidence: list[dict[str, Any]] = []
        for name, blob in files:
            kind = domain.sniff_type(blob)
            file_id = await bucket.upload_from_stream(
                name or "evidence",
                blob,
                metadata={"ticket_id": ticket_id, "content_type": kind, "user_id": caller.user_id},
            )
            evidence.append({"file_id": str(file_id), "name": name, "content_type": kind, "size": len(blob)})

        async def write(tx: Tx) -> None:
            now = utcnow()
            if idem_key is not None:
                # Same transaction as the ticket: a concurrent repeat collides here.
                await tx.db[TICKET_KEYS].insert_one(
                    {
                        "_id": f"{caller.user_id}:{idem_key}",
                        "ticket_id": ticket_id,
                        "fingerprint": fingerprint,
                        "at": now,
                    },
                    session=tx.session,
                )
            await tx.db[TICKETS].insert_one(
                {
                    "_id": ticket_id,
                    "order_id": data.order_id,
                    "user_id": caller.user_id,
                    "kind": data.kind,
                    "description": data.description,
                    "status": "open",
                    "created_at": now,
                    "updated_at": now,
                    "due_at": domain.due_at(now, settings.ticket_sla_minutes),
                    "evidence": evidence,
                    "messages": [],
                    "history": [{"status": "open", "at": now}],
                },
                session=tx.session,
            )
            subject, body = domain.ticket_notice(ticket_id, "opened")
            await notify(
                tx,
                user_id=caller.user_id,
                kind="ticket.opened",
                subject=subject,
                body=body,
                ref={"ticket_id": ticket_id},
            )
            tx.emit(TicketOpened(ticket_id=ticket_id, order_id=data.order_id, user_id=caller.user_id, kind=data.kind))

        try:
            await runtime.uow.run(write)
        except BaseException as exc:
            for item in evidence:
                await bucket.delete(ObjectId(item["file_id"]))
            if isinstance(exc, DuplicateKeyError) and idem_key is not None:
                repeat = await _repeat_of(runtime, caller.user_id, idem_key, fingerprint)
                if repeat is not None:
                    return repeat
            raise
        return {"ticket_id": ticket_id, "status": "open"}

    @get("/api/v1/tickets", summary="Your after-sales requests, newest first")
    async def list_own(
        self, runtime: Runtime, caller: Caller, page: PageNo = 1, page_size: PageSize = 20
    ) -> dict[str, Any]:
        skip, limit = page_args(page, page_size)
        query = {"user_id": caller.user_id}
        coll = runtime.mongo.db[TICKETS]
        docs = await coll.find(query).sort([("created_at", -1)]).skip(skip).limit(limit).to_list(None)
        now = utcnow()
        return {
            "items": [ticket_view(d, now, full=False) for d in docs],
            "page": page,
            "page_size": limit,
            "total": await coll.count_documents(query),
        }

    @get("/api/v1/tickets/{ticket_id:str}")
    async def get_ticket(self, runtime: Runtime, caller: Caller, ticket_id: str) -> dict[str, Any]:
        return ticket_view(await _own_ticket(runtime, caller, ticket_id), utcnow(), full=True)

    @get("/api/v1/tickets/{ticket_id:str}/evidence/{file_id:str}", summary="Download one evidence file")
    async def evidence(self, runtime: Runtime, caller: Caller, ticket_id: str, file_id: str) -> Stream:
        ticket = await _own_ticket(runtime, caller, ticket_id)
        meta = next((e for e in ticket.get("evidence", []) if e["file_id"] == file_id), None)
        if meta is None:
            raise not_found("evidence file")
        bucket = AsyncIOMotorGridFSBucket(runtime.mongo.db, bucket_name=EVIDENCE_BUCKET)
        try:
            stream = await bucket.open_download_stream(ObjectId(file_id))
        except InvalidId as exc:
            raise not_found("evidence file") from exc

        async def chunks() -> AsyncIterator[bytes]:
            while chunk := await stream.readchunk():
                yield chunk

        return Stream(chunks(), media_type=meta["content_type"], headers={"X-Content-Type-Options": "nosniff"})

    @post("/api/v1/tickets/{ticket_id:str}/messages", status_code=201, summary="Add a message to the thread")
    async def add_message(self, runtime: Runtime, caller: Caller, ticket_id: str, data: NewMessage) -> dict[str, Any]:
        settings = settings_of(runtime)

        async def write(tx: Tx) -> dict[str, Any]:
            ticket = await _own_ticket(runtime, caller, ticket_id, session=tx.session)
            if ticket["status"] == "resolved":
                raise Problem(409, "ticket-resolved", "Conflict", "the ticket is resolved; open a new one")
            now = utcnow()
            # Staff answering a ticket they do not own; the owner (even if staff) is the buyer.
            from_staff = caller.is_staff and ticket["user_id"] != caller.user_id
            message = {
                "message_id": new_id(),
                "author": "staff" if from_staff else "buyer",
                "author_id": caller.user_id,
                "body": data.body,
                "at": now,
            }
            update: dict[str, Any] = {"$push": {"messages": message}, "$set": {"updated_at": now}}
            if from_staff:
                update["$set"].update(status="answered", due_at=None, answered_at=now)
                if ticket["status"] != "answered":
                    update["$push"]["history"] = {"status": "answered", "at": now}
                subject, body = domain.ticket_notice(ticket_id, "answered")
                await notify(
                    tx,
                    user_id=ticket["user_id"],
                    kind="ticket.answered",
                    subject=subject,
                    body=body,
                    ref={"ticket_id": ticket_id},
                )
            else:
                # The buyer waits for staff again; keep the earliest unanswered time.
                update["$set"].update(
                    status="open", due_at=ticket.get("due_at") or domain.due_at(now, settings.ticket_sla_minutes)
                )
                if ticket["status"] != "open":
                    update["$push"]["history"] = {"status": "open", "at": now}
            await tx.db[TICKETS].update_one({"_id": ticket_id}, update, session=tx.session)
            return message

        return await runtime.uow.run(write)


class StaffTicketsController(Controller):
    tags = ["after-sales (staff)"]
    guards = STAFF

    @get(
        "/api/v1/admin/tickets",
        summary="The staff queue: urged orders first, then overdue, then by due time",
    )
    async def queue(
        self, runtime: Runtime, page: PageNo = 1, page_size: PageSize = 20, status: str = "open,answered"
    ) -> dict[str, Any]:
        statuses = [s for s in status.split(",") if s]
        db = runtime.mongo.db
        urged = {u["_id"]: u for u in await db[URGES].find({"open": True}).to_list(None)}
        # The unresolved queue is small (it is worked down daily), so flags are computed here.
        docs = await db[TICKETS].find({"status": {"$in": statuses}}).sort([("created_at", 1)]).to_list(2000)
        now = utcnow()
        views = []
        for doc in docs:
            view = ticket_view(doc, now, full=False)
            urge = urged.get(doc["order_id"])
            view["urged"] = urge is not None
            view["urge_count"] = urge["count"] if urge else 0
            views.append(view)
        far = datetime.max.replace(tzinfo=now.tzinfo)
        views.sort(key=lambda v: (not v["urged"], not v["overdue"], v["due_at"] or far, v["created_at"]))
        skip, limit = page_args(page, page_size)
        return {"items": views[skip : skip + limit], "page": page, "page_size": limit, "total": len(views)}

    @post("/api/v1/admin/tickets/{ticket_id:str}/resolve", status_code=200)
    async def resolve(self, runtime: Runtime, caller: Caller, ticket_id: str, data: ResolveRequest) -> dict[str, Any]:
        resolution = domain.Resolution(action=data.action, note=data.note, quantity=data.quantity)

        async def write(tx: Tx) -> dict[str, Any]:
            ticket = await tx.db[TICKETS].find_one({"_id": ticket_id}, session=tx.session)
            if ticket is None:
                raise not_found("ticket")
            order = await tx.db[ORDERS].find_one({"_id": ticket["order_id"]}, session=tx.session)
            try:
                verdict = domain.check_resolution(ticket, order, resolution)
            except domain.RuleViolation as exc:
                raise problem_of(exc) from exc
            if verdict == "same":
                return _resolved_view(ticket)
            assert order is not None or data.action == "reject"
            now = utcnow()
            done: dict[str, Any] = {"action": data.action, "note": data.note, "by": caller.user_id, "at": now}
            if data.action == "reissue":
                assert order is not None
                done["quantity"] = data.quantity or int(order["quantity"])
            if data.action == "refund":
                assert order is not None
                done["amount_cents"] = int(order["total_cents"])
            # Guarded transitions: a concurrent resolve of the same ticket (or a refund through
            # another ticket of the same order) conflicts here and retries into "same"/409.
            moved = await tx.db[TICKETS].update_one(
                {"_id": ticket_id, "status": {"$ne": "resolved"}},
                {
                    "$set": {"status": "resolved", "resolution": done, "due_at": None, "updated_at": now},
                    "$push": {"history": {"status": "resolved", "at": now}},
                },
                session=tx.session,
            )
            if moved.modified_count != 1:
                raise Problem(409, "already-resolved", "Conflict", "the ticket was resolved meanwhile")
            common = {"ticket_id": ticket_id, "order_id": ticket["order_id"], "user_id": ticket["user_id"]}
            if data.action == "refund":
                marked = await tx.db[ORDERS].update_one(
                    {"_id": ticket["order_id"], "refund_ticket_id": None},
                    {"$set": {"refund_ticket_id": ticket_id}},
                    session=tx.session,
                )
                if marked.modified_count != 1:
                    raise Problem(409, "already-refunded", "Conflict", "a refund was already approved for this order")
                tx.emit(RefundApproved(**common, amount_cents=done["amount_cents"]))
            elif data.action == "reissue":
                assert order is not None
                tx.emit(ReissueRequested(**common, sku_id=order["sku_id"], quantity=done["quantity"]))
            tx.emit(TicketResolved(**common, action=data.action, resolved_by=caller.user_id))
            subject, body = domain.ticket_notice(ticket_id, data.action, data.note)
            await notify(
                tx,
                user_id=ticket["user_id"],
                kind=f"ticket.{data.action}",
                subject=subject,
                body=body,
                ref={"ticket_id": ticket_id},
            )
            return _resolved_view({**ticket, "status": "resolved", "resolution": done})

        return await runtime.uow.run(write)


def _resolved_view(ticket: dict[str, Any]) -> dict[str, Any]:
    return {"ticket_id": ticket["_id"], "status": ticket["status"], "resolution": ticket["resolution"]}
