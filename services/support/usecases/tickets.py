"""After-sales tickets (售后申请): a buyer opens one on an own order with evidence files, talks
with staff in a message thread, and staff resolve it with a reissue, a refund or a rejection.

Ownership comes from the `orders` projection (order.status-changed): a ticket on an order that
is not the caller's, or unknown, is 404 and nothing is stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.support import domain
from services.support.deps import SupportDeps
from services.support.usecases.notifications import notify
from shared.auth import Caller
from shared.contracts.envelope import new_id, utcnow
from shared.contracts.support import RefundApproved, ReissueRequested, TicketOpened, TicketResolved
from shared.errors import Problem, not_found, validation_problem
from shared.idempotency import fingerprint
from shared.messaging.outbox import Tx

log = logging.getLogger(__name__)
IDEMPOTENCY_SCOPE = "ticket"


def problem_of(exc: domain.RuleViolation) -> Problem:
    if exc.status == 404:
        return not_found("order")
    if exc.status == 422:
        return validation_problem([{"field": exc.field or "body", "message": exc.detail}], exc.detail)
    return Problem(exc.status, exc.slug, "Conflict", exc.detail)


@dataclass(frozen=True)
class OpenTicket:
    order_id: str
    kind: domain.TicketKindName
    description: str
    files: list[tuple[str, bytes]]
    """(file name, bytes) of each evidence file."""


async def open_ticket(deps: SupportDeps, caller: Caller, new: OpenTicket, *, key: str | None) -> dict[str, Any]:
    """Open a ticket on the caller's own order; with an Idempotency-Key a repeat answers the
    first ticket (422 `idempotency-key-reused` for another body)."""
    settings = deps.settings
    store = deps.store
    errors = domain.check_evidence(
        new.files,
        max_bytes=settings.evidence_max_bytes,
        max_files=settings.evidence_max_files,
        allowed=settings.evidence_type_set,
    )
    if errors:
        raise validation_problem(errors, "the evidence files are not acceptable")
    fp = fingerprint(new.order_id, new.kind, new.description, *(blob for _, blob in new.files))
    earlier = await store.recall(IDEMPOTENCY_SCOPE, caller.user_id, key, fp)
    if earlier is not None:
        return await _answer_of(deps, earlier)
    try:
        domain.check_ticketable(await store.order(new.order_id), caller.user_id)
    except domain.RuleViolation as exc:
        raise problem_of(exc) from exc

    ticket_id = new_id()
    # GridFS refuses transactions, so the files go first and the ticket that references them
    # commits after; if that fails the files are removed again. (A crash in between leaves files
    # no ticket names: their metadata.ticket_id lets the evidence sweep find them.)
    evidence: list[dict[str, Any]] = []
    for name, blob in new.files:
        kind = domain.sniff_type(blob)
        file_id = await store.put_evidence(
            name or "evidence",
            blob,
            metadata={"ticket_id": ticket_id, "content_type": kind, "user_id": caller.user_id},
        )
        evidence.append({"file_id": file_id, "name": name, "content_type": kind, "size": len(blob)})

    async def write(tx: Tx) -> None:
        now = utcnow()
        # Same transaction as the ticket: a concurrent repeat collides here.
        await store.remember(IDEMPOTENCY_SCOPE, caller.user_id, key, fp, ticket_id, tx=tx)
        await store.create_ticket(
            {
                "_id": ticket_id,
                "order_id": new.order_id,
                "user_id": caller.user_id,
                "kind": new.kind,
                "description": new.description,
                "status": domain.TicketStatus.OPEN.value,
                "created_at": now,
                "updated_at": now,
                "due_at": domain.due_at(now, settings.ticket_sla_minutes),
                "evidence": evidence,
                "messages": [],
                "history": [{"status": domain.TicketStatus.OPEN.value, "at": now}],
            },
            tx=tx,
        )
        subject, body = domain.ticket_notice(ticket_id, "opened")
        await notify(
            deps,
            tx,
            user_id=caller.user_id,
            kind="ticket.opened",
            subject=subject,
            body=body,
            ref={"ticket_id": ticket_id},
        )
        tx.emit(TicketOpened(ticket_id=ticket_id, order_id=new.order_id, user_id=caller.user_id, kind=new.kind))

    try:
        await deps.uow.run(write)
    except BaseException as exc:
        for item in evidence:
            await store.discard_evidence(item["file_id"])
        if isinstance(exc, DuplicateKeyError) and key is not None:
            earlier = await store.recall(IDEMPOTENCY_SCOPE, caller.user_id, key, fp)
            if earlier is not None:
                return await _answer_of(deps, earlier)
        raise
    return {"ticket_id": ticket_id, "status": domain.TicketStatus.OPEN.value}


async def _answer_of(deps: SupportDeps, ticket_id: str) -> dict[str, Any]:
    """The answer to a repeat of the request that opened `ticket_id`, with its status now."""
    return {"ticket_id": ticket_id, "status": await deps.store.ticket_status(ticket_id) or "open"}


async def own_ticket(deps: SupportDeps, caller: Caller, ticket_id: str, *, tx: Tx | None = None) -> dict[str, Any]:
    """The ticket if the caller is its buyer or staff; 404 otherwise, as if it did not exist."""
    doc = await deps.store.ticket(ticket_id, tx=tx)
    if doc is None or (doc["user_id"] != caller.user_id and not caller.is_staff):
        raise not_found("ticket")
    return doc


async def list_own(deps: SupportDeps, caller: Caller, *, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    return await deps.store.tickets_of(caller.user_id, skip=skip, limit=limit)


async def evidence_file(
    deps: SupportDeps, caller: Caller, ticket_id: str, file_id: str
) -> tuple[str, AsyncIterator[bytes]]:
    """(content type, bytes) of one evidence file of a ticket the caller may see."""
    ticket = await own_ticket(deps, caller, ticket_id)
    meta = next((e for e in ticket.get("evidence", []) if e["file_id"] == file_id), None)
    if meta is None:
        raise not_found("evidence file")
    chunks = await deps.store.evidence_chunks(file_id)
    if chunks is None:
        raise not_found("evidence file")
    return str(meta["content_type"]), chunks


async def add_message(deps: SupportDeps, caller: Caller, ticket_id: str, body: str) -> dict[str, Any]:
    """A message in the thread; a staff answer tells the buyer. 409 on a resolved ticket."""

    async def write(tx: Tx) -> dict[str, Any]:
        ticket = await own_ticket(deps, caller, ticket_id, tx=tx)
        now = utcnow()
        try:
            effect = domain.message_effect(
                ticket,
                caller_id=caller.user_id,
                caller_is_staff=caller.is_staff,
                now=now,
                sla_minutes=deps.settings.ticket_sla_minutes,
            )
        except domain.RuleViolation as exc:
            raise problem_of(exc) from exc
        message = {
            "message_id": new_id(),
            "author": effect.author,
            "author_id": caller.user_id,
            "body": body,
            "at": now,
        }
        if effect.author == "staff":
            subject, text = domain.ticket_notice(ticket_id, "answered")
            await notify(
                deps,
                tx,
                user_id=ticket["user_id"],
                kind="ticket.answered",
                subject=subject,
                body=text,
                ref={"ticket_id": ticket_id},
            )
        moved = await deps.store.add_message(
            ticket_id, message, status=effect.status, fields=effect.fields, history=effect.history, now=now, tx=tx
        )
        if not moved:
            raise problem_of(domain.RuleViolation(409, "ticket-resolved", "the ticket is resolved; open a new one"))
        return message

    return await deps.uow.run(write)


async def staff_queue(deps: SupportDeps, statuses: list[str]) -> list[tuple[dict[str, Any], int]]:
    """(ticket, urge count) of the unresolved tickets in `statuses`, in the staff queue's order."""
    urges = await deps.store.open_urge_counts()
    # The unresolved queue is small (it is worked down daily), so it is ranked here.
    docs = await deps.store.tickets_in(statuses)
    now = utcnow()
    ranked = [(doc, urges.get(doc["order_id"], 0), doc["order_id"] in urges) for doc in docs]
    ranked.sort(key=lambda item: domain.queue_rank(item[0], item[2], now))
    return [(doc, count) for doc, count, _ in ranked]


async def resolve(deps: SupportDeps, staff_id: str, ticket_id: str, resolution: domain.Resolution) -> dict[str, Any]:
    """Resolve a ticket once (reissue, refund or reject); the same resolution again answers the
    first one and emits nothing; another is 409."""
    store = deps.store

    async def write(tx: Tx) -> dict[str, Any]:
        ticket = await store.ticket(ticket_id, tx=tx)
        if ticket is None:
            raise not_found("ticket")
        order = await store.order(ticket["order_id"], tx=tx)
        try:
            verdict = domain.check_resolution(ticket, order, resolution)
        except domain.RuleViolation as exc:
            raise problem_of(exc) from exc
        if verdict == "same":
            return ticket
        now = utcnow()
        done = domain.resolution_record(resolution, order, by=staff_id, at=now)
        # Guarded by the ticket table: a concurrent resolve of the same ticket (or a refund
        # through another ticket of the same order) conflicts here and retries into "same"/409.
        if not await store.resolve_ticket(ticket_id, done, now=now, tx=tx):
            raise Problem(409, "already-resolved", "Conflict", "the ticket was resolved meanwhile")
        common = {"ticket_id": ticket_id, "order_id": ticket["order_id"], "user_id": ticket["user_id"]}
        if resolution.action == "refund":
            if not await store.mark_refunded_by(ticket["order_id"], ticket_id, tx=tx):
                raise Problem(409, "already-refunded", "Conflict", "a refund was already approved for this order")
            tx.emit(RefundApproved(**common, amount_cents=done["amount_cents"]))
        elif resolution.action == "reissue":
            assert order is not None  # check_resolution refuses a reissue without one
            tx.emit(ReissueRequested(**common, sku_id=order["sku_id"], quantity=done["quantity"]))
        tx.emit(TicketResolved(**common, action=resolution.action, resolved_by=staff_id))
        subject, body = domain.ticket_notice(ticket_id, resolution.action, resolution.note)
        await notify(
            deps,
            tx,
            user_id=ticket["user_id"],
            kind=f"ticket.{resolution.action}",
            subject=subject,
            body=body,
            ref={"ticket_id": ticket_id},
        )
        return {**ticket, "status": domain.TicketStatus.RESOLVED.value, "resolution": done}

    return await deps.uow.run(write)


async def sweep_orphan_evidence(deps: SupportDeps, *, older_than: timedelta) -> int:
    """Remove evidence files no ticket references (left by a crash between upload and commit)."""
    removed = await deps.store.remove_orphan_evidence(older_than=older_than)
    if removed:
        log.warning("removed %d evidence file(s) of tickets that never committed", removed)
    return removed


async def sweep_evidence_forever(deps: SupportDeps, *, every: timedelta = timedelta(hours=1)) -> None:
    """The hourly evidence sweep (the first one at start-up)."""
    while True:
        try:
            # Files younger than an hour may belong to a ticket whose transaction is still running.
            await sweep_orphan_evidence(deps, older_than=timedelta(hours=1))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("evidence sweep failed; trying again later")
        await asyncio.sleep(every.total_seconds())
