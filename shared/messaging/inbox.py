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
            {"_id": f"{handler}:{envelope.event_id}", "type": envelope.type, "at": utcnow()},
            session=session,
        )
    except DuplicateKeyError as exc:
        raise AlreadyProcessed(envelope.event_id) from exc
