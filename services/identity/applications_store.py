"""Identity's MongoDB calls for agent applications (代理申请), collection `agent_applications`:

    agent_applications  {_id, user_id, note, status: pending | approved | rejected,
                         open_for (= user_id while pending, unset after), created_at,
                         decided_at, decided_by, reason}

`open_for` is unique (sparse): a buyer has at most one pending application, also when two
requests race. Making the account an agent is a write on `users` (level and role together)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from motor.motor_asyncio import AsyncIOMotorDatabase
from pymongo import ReturnDocument

from services.identity.store import USER_VIEW, USERS
from shared.messaging.outbox import Tx
from shared.mongo import Index

APPLICATIONS = "agent_applications"
APPLICATION_INDEXES: list[Index] = [
    Index(APPLICATIONS, [("open_for", 1)], {"unique": True, "sparse": True}),
    Index(APPLICATIONS, [("status", 1), ("created_at", -1)]),
]

Doc = dict[str, Any]


class ApplicationStore:
    def __init__(self, db: AsyncIOMotorDatabase[Any]) -> None:
        self.db = db

    async def add(self, doc: Doc) -> None:
        """DuplicateKeyError when the buyer has a pending application already."""
        await self.db[APPLICATIONS].insert_one({**doc, "open_for": doc["user_id"]})

    async def pending_of(self, user_id: str) -> Doc | None:
        doc: Doc | None = await self.db[APPLICATIONS].find_one({"open_for": user_id})
        return doc

    async def get(self, application_id: str) -> Doc | None:
        doc: Doc | None = await self.db[APPLICATIONS].find_one({"_id": application_id})
        return doc

    async def page(self, status: str | None, skip: int, limit: int) -> tuple[list[Doc], int]:
        query: Doc = {"status": status} if status else {}
        cursor = self.db[APPLICATIONS].find(query).sort([("created_at", -1), ("_id", 1)]).skip(skip).limit(limit)
        return [d async for d in cursor], await self.db[APPLICATIONS].count_documents(query)

    async def decide(self, tx: Tx, application_id: str, status: str, fields: Doc) -> Doc | None:
        """Pending -> `status`, once: the application after, None when it was not pending."""
        doc: Doc | None = await tx.db[APPLICATIONS].find_one_and_update(
            {"_id": application_id, "status": "pending"},
            {"$set": {"status": status, **fields}, "$unset": {"open_for": ""}},
            return_document=ReturnDocument.AFTER,
            session=tx.session,
        )
        return doc

    async def make_agent(self, tx: Tx, user_id: str, at: datetime) -> tuple[Doc, Doc] | None:
        """Level `agent` and role `agent` in one write: the account before and after (with its
        new `version`), None without the account."""
        before: Doc | None = await tx.db[USERS].find_one_and_update(
            {"_id": user_id},
            {"$set": {"level": "agent", "agent_since": at}, "$addToSet": {"roles": "agent"}, "$inc": {"version": 1}},
            projection={**USER_VIEW, "version": 1},
            session=tx.session,
        )
        if before is None:
            return None
        roles = sorted({*before.get("roles", []), "agent"})
        after = {**before, "level": "agent", "roles": roles, "version": int(before.get("version", 0)) + 1}
        return before, after

    async def account(self, user_id: str) -> Doc | None:
        doc: Doc | None = await self.db[USERS].find_one({"_id": user_id}, {**USER_VIEW, "version": 1})
        return doc
