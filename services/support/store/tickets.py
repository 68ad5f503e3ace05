"""Tickets, their evidence files (GridFS) and their Idempotency-Key records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any, cast

from bson import ObjectId
from bson.errors import InvalidId
from motor.motor_asyncio import AsyncIOMotorGridFSBucket

from services.support.domain import TICKET_FLOW, TicketStatus
from services.support.store.schema import EVIDENCE_BUCKET, TICKETS, URGES, Collections, session_of
from shared import idempotency
from shared.contracts.envelope import utcnow
from shared.messaging.outbox import Tx

QUEUE_LIMIT = 2000
"""The unresolved queue is worked down daily; more than this is an incident, not a page."""


class TicketStore(Collections):
    async def ticket(self, ticket_id: str, *, tx: Tx | None = None) -> dict[str, Any] | None:
        return cast(dict[str, Any] | None, await self.db[TICKETS].find_one({"_id": ticket_id}, session=session_of(tx)))

    async def ticket_status(self, ticket_id: str) -> str | None:
        doc = await self.db[TICKETS].find_one({"_id": ticket_id}, {"status": 1})
        return str(doc["status"]) if doc else None

    async def create_ticket(self, doc: dict[str, Any], *, tx: Tx) -> None:
        await self.db[TICKETS].insert_one(doc, session=tx.session)

    async def tickets_of(self, user_id: str, *, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """One buyer's tickets, newest first, and how many there are."""
        query = {"user_id": user_id}
        coll = self.db[TICKETS]
        docs = await coll.find(query).sort([("created_at", -1)]).skip(skip).limit(limit).to_list(None)
        return docs, await coll.count_documents(query)

    async def tickets_in(self, statuses: list[str]) -> list[dict[str, Any]]:
        """The staff queue's tickets, oldest first (ranked by the caller)."""
        coll = self.db[TICKETS]
        return cast(
            list[dict[str, Any]],
            await coll.find({"status": {"$in": statuses}}).sort([("created_at", 1)]).to_list(QUEUE_LIMIT),
        )

    async def open_urge_counts(self) -> dict[str, int]:
        """Order id → urge count of every open urge."""
        return {u["_id"]: int(u["count"]) for u in await self.db[URGES].find({"open": True}).to_list(None)}

    async def add_message(
        self,
        ticket_id: str,
        message: dict[str, Any],
        *,
        status: TicketStatus,
        fields: dict[str, Any],
        history: bool,
        now: datetime,
        tx: Tx,
    ) -> bool:
        """Append a message and move the ticket to `status`; False if the table forbids it now."""
        update: dict[str, Any] = {
            "$push": {"messages": message},
            "$set": {**fields, "status": status.value, "updated_at": now},
        }
        if history:
            update["$push"]["history"] = {"status": status.value, "at": now}
        moved = await self.db[TICKETS].update_one(
            {"_id": ticket_id, **TICKET_FLOW.guard(status)}, update, session=tx.session
        )
        return bool(moved.matched_count == 1)

    async def resolve_ticket(self, ticket_id: str, resolution: dict[str, Any], *, now: datetime, tx: Tx) -> bool:
        """The guarded move to resolved: a concurrent resolve of the same ticket matches nothing."""
        moved = await self.db[TICKETS].update_one(
            {"_id": ticket_id, **TICKET_FLOW.guard(TicketStatus.RESOLVED)},
            {
                "$set": {
                    "status": TicketStatus.RESOLVED.value,
                    "resolution": resolution,
                    "due_at": None,
                    "updated_at": now,
                },
                "$push": {"history": {"status": TicketStatus.RESOLVED.value, "at": now}},
            },
            session=tx.session,
        )
        return bool(moved.modified_count == 1)

    async def ticket_ids_by_order(self, order_ids: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for t in await self.db[TICKETS].find({"order_id": {"$in": order_ids}}, {"order_id": 1}).to_list(None):
            found.setdefault(t["order_id"], []).append(t["_id"])
        return found

    # -- Idempotency-Key ------------------------------------------------------------------------

    async def recall(self, scope: str, owner: str, key: str | None, fp: str) -> str | None:
        return await idempotency.recall(self.db, scope, owner, key, fp)

    async def remember(self, scope: str, owner: str, key: str | None, fp: str, ref: str, *, tx: Tx) -> None:
        await idempotency.remember(tx, scope, owner, key, fp, ref)

    # -- evidence (GridFS cannot join a transaction) -------------------------------------------------

    def _bucket(self) -> AsyncIOMotorGridFSBucket:
        return AsyncIOMotorGridFSBucket(self.db, bucket_name=EVIDENCE_BUCKET)

    async def put_evidence(self, name: str, blob: bytes, *, metadata: dict[str, Any]) -> str:
        return str(await self._bucket().upload_from_stream(name, blob, metadata=metadata))

    async def discard_evidence(self, file_id: str) -> None:
        await self._bucket().delete(ObjectId(file_id))

    async def evidence_chunks(self, file_id: str) -> AsyncIterator[bytes] | None:
        """The file's bytes as a stream; None for an id that cannot be a file's."""
        try:
            stream = await self._bucket().open_download_stream(ObjectId(file_id))
        except InvalidId:
            return None

        async def chunks() -> AsyncIterator[bytes]:
            while chunk := await stream.readchunk():
                yield chunk

        return chunks()

    async def remove_orphan_evidence(self, *, older_than: timedelta) -> int:
        """Delete evidence files older than `older_than` whose ticket does not exist; how many.
        Their `metadata.ticket_id` names the ticket they were uploaded for."""
        files = self.db[f"{EVIDENCE_BUCKET}.files"]
        cutoff = utcnow() - older_than
        candidates = await files.find({"uploadDate": {"$lt": cutoff}}, {"metadata.ticket_id": 1}).to_list(5000)
        ticket_ids = list({f.get("metadata", {}).get("ticket_id") for f in candidates})
        existing = {
            t["_id"] for t in await self.db[TICKETS].find({"_id": {"$in": ticket_ids}}, {"_id": 1}).to_list(None)
        }
        bucket = self._bucket()
        removed = 0
        for f in candidates:
            if f.get("metadata", {}).get("ticket_id") not in existing:
                await bucket.delete(f["_id"])
                removed += 1
        return removed
