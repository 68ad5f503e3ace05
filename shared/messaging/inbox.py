"""Inbox: the event ids a consumer has applied, written in the same transaction as the effect.

The unique `_id` (`<handler>:<event_id>`) makes a redelivered or duplicated event fail to insert,
which aborts its transaction: the effect happens once however often the event arrives.
"""

from __future__ import annotations

from motor.motor_asyncio import AsyncIOMotorClientSession, AsyncIOMotorDatabase
from pymongo.errors import DuplicateKeyError

from shared.contracts.envelope import Envelope, utcnow
from shared.mongo import Index

INBOX = "inbox"
INBOX_INDEXES = (Index(INBOX, [("at", 1)]),)


class AlreadyProcessed(Exception):
    """The event was applied before by this handler."""


async def claim(
    db: AsyncIOMotorDatabase,  # type: ignore[type-arg]
    session: AsyncIOMotorClientSession,
    handler: str,
    envelope: Envelope,
) -> None:
    """Record the event as processed by `handler`; raises AlreadyProcessed on a duplicate."""
    try:
        await db[INBOX].insert_one(
            {"_id": inbox_id(handler, envelope), "type": envelope.type, "at": utcnow()},
            session=session,
        )
    except DuplicateKeyError as exc:
        raise AlreadyProcessed(envelope.event_id) from exc


def inbox_id(handler: str, envelope: Envelope) -> str:
    return f"{handler}:{envelope.event_id}"


async def claim_many(
    db: AsyncIOMotorDatabase,  # type: ignore[type-arg]
    session: AsyncIOMotorClientSession,
    claims: list[tuple[str, Envelope]],
) -> set[str]:
    """Record many (handler, event) pairs with one read and one `insert_many`; returns the inbox
    ids that were new (the caller applies only those, once each).

    The ids already in the inbox are read first instead of letting the insert fail on them: on
    MongoDB a write error aborts the whole transaction, so a duplicate must never reach the
    insert. A duplicate that does (another consumer claimed it between our read and our insert)
    raises DuplicateKeyError/BulkWriteError and aborts this transaction; the caller then applies
    the events one transaction each, where `claim` skips it."""
    wanted: dict[str, Envelope] = {}
    for handler, envelope in claims:
        wanted.setdefault(inbox_id(handler, envelope), envelope)
    if not wanted:
        return set()
    seen = {doc["_id"] async for doc in db[INBOX].find({"_id": {"$in": list(wanted)}}, {"_id": 1}, session=session)}
    fresh = [key for key in wanted if key not in seen]
    if fresh:
        at = utcnow()
        await db[INBOX].insert_many(
            [{"_id": key, "type": wanted[key].type, "at": at} for key in fresh], ordered=False, session=session
        )
    return set(fresh)
