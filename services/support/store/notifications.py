"""In-app notifications and the email queued on each."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from pymongo import InsertOne, UpdateOne

from services.support.store.claims import claim_due
from services.support.store.schema import NOTIFICATIONS, Collections
from shared.messaging.outbox import Tx


class NotificationStore(Collections):
    async def add_notification(self, doc: dict[str, Any], *, tx: Tx) -> None:
        # With the transaction's other notices in one insert (a batch of order changes tells
        # many buyers); nothing reads a notice back in the transaction that writes it.
        tx.later(NOTIFICATIONS, InsertOne(doc))

    async def notifications_of(
        self, user_id: str, *, unread_only: bool, skip: int, limit: int
    ) -> tuple[list[dict[str, Any]], int, int]:
        """One user's notices, newest first; how many match, and how many are unread."""
        query: dict[str, Any] = {"user_id": user_id, **({"read_at": None} if unread_only else {})}
        coll = self.db[NOTIFICATIONS]
        docs = await coll.find(query).sort([("created_at", -1)]).skip(skip).limit(limit).to_list(None)
        total = await coll.count_documents(query)
        return docs, total, await coll.count_documents({"user_id": user_id, "read_at": None})

    async def mark_read(self, user_id: str, notification_id: str, *, at: datetime) -> dict[str, Any] | None:
        """Mark one of the user's notices read (once); the notice, None if it is not theirs."""
        coll = self.db[NOTIFICATIONS]
        # Owner in the filter: someone else's notification is simply not found.
        await coll.update_one({"_id": notification_id, "user_id": user_id, "read_at": None}, {"$set": {"read_at": at}})
        return cast(dict[str, Any] | None, await coll.find_one({"_id": notification_id, "user_id": user_id}))

    async def mark_all_read(self, user_id: str, *, at: datetime) -> int:
        result = await self.db[NOTIFICATIONS].update_many(
            {"user_id": user_id, "read_at": None}, {"$set": {"read_at": at}}
        )
        return int(result.modified_count)

    async def claim_due_emails(self, *, now: datetime, lease_until: datetime, limit: int) -> list[dict[str, Any]]:
        """Notices whose email is due, claimed until `lease_until` for this worker."""
        return await claim_due(
            self.db[NOTIFICATIONS],
            {"email.status": "pending", "email.next_at": {"$lte": now}},
            sort=[("email.next_at", 1)],
            lease={"email.next_at": lease_until},
            limit=limit,
        )

    async def save_email_outcomes(self, outcomes: list[tuple[str, dict[str, Any]]]) -> None:
        """Set each notice's `email.*` fields, in one bulk write."""
        if outcomes:
            await self.db[NOTIFICATIONS].bulk_write(
                [UpdateOne({"_id": nid}, {"$set": changes}) for nid, changes in outcomes], ordered=False
            )
