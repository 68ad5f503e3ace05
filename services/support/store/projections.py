"""What support keeps of other services' events: orders, contacts and urges."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from pymongo import UpdateOne

from services.support.store.schema import CONTACTS, ORDERS, URGES, Collections, session_of
from shared.messaging.outbox import Tx
from shared.mongo import newest_wins


class ProjectionStore(Collections):
    async def order(self, order_id: str, *, tx: Tx | None = None) -> dict[str, Any] | None:
        return cast(dict[str, Any] | None, await self.db[ORDERS].find_one({"_id": order_id}, session=session_of(tx)))

    async def orders_by_id(self, order_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {o["_id"]: o for o in await self.db[ORDERS].find({"_id": {"$in": order_ids}}).to_list(None)}

    async def project_order(self, order_id: str, fields: dict[str, Any], *, tx: Tx) -> None:
        """Keep the newest change. One order's events arrive in order (one partition); the `at`
        guard only keeps a replayed old event from winding the projection back, and is decided
        by the database in the write itself (`newest_wins`), so no read comes first. Written with
        the transaction's other projections in one ordered bulk write (`Tx.later`), so a later
        event of the same batch is guarded against an earlier one's write."""
        tx.later(ORDERS, UpdateOne({"_id": order_id}, newest_wins("at", fields["at"], fields), upsert=True))

    async def mark_refunded_by(self, order_id: str, ticket_id: str, *, tx: Tx) -> bool:
        """One refund per order: False when another ticket already got it."""
        marked = await self.db[ORDERS].update_one(
            {"_id": order_id, "refund_ticket_id": None}, {"$set": {"refund_ticket_id": ticket_id}}, session=tx.session
        )
        return bool(marked.modified_count == 1)

    async def save_contact(self, user_id: str, fields: dict[str, Any], *, tx: Tx) -> None:
        await self.db[CONTACTS].update_one({"_id": user_id}, {"$set": fields}, upsert=True, session=tx.session)

    async def emails_of(self, user_ids: list[str]) -> dict[str, str | None]:
        """User id → email address, for the users support knows a contact of."""
        found = await self.db[CONTACTS].find({"_id": {"$in": user_ids}}).to_list(None)
        return {c["_id"]: c.get("email") for c in found}

    # -- urges (催单) ------------------------------------------------------------------------------

    async def count_urge(self, order_id: str, *, user_id: str, order_status: str, at: datetime, tx: Tx) -> None:
        await self.db[URGES].update_one(
            {"_id": order_id},
            {
                "$set": {"user_id": user_id, "order_status": order_status, "last_urged_at": at, "open": True},
                "$setOnInsert": {"first_urged_at": at},
                "$inc": {"count": 1},
            },
            upsert=True,
            session=tx.session,
        )

    async def settle_urge(self, order_id: str, *, at: datetime, because: str, tx: Tx) -> None:
        """Close the order's open urge, if it has one: the order settled. Looked for first:
        most orders were never urged, and a read costs the database less than a write."""
        if await self.db[URGES].find_one({"_id": order_id, "open": True}, {"_id": 1}, session=tx.session) is None:
            return
        await self.db[URGES].update_one(
            {"_id": order_id, "open": True},
            {"$set": {"open": False, "closed_at": at, "closed_because": because}},
            session=tx.session,
        )

    async def handle_urge(self, order_id: str, *, at: datetime) -> bool:
        """Staff took the urge off the list; False if the order was never urged."""
        result = await self.db[URGES].update_one(
            {"_id": order_id}, {"$set": {"open": False, "closed_at": at, "closed_because": "handled"}}
        )
        return bool(result.matched_count == 1)

    async def open_urges(self, limit: int = 500) -> list[dict[str, Any]]:
        """Open urges: most urged first, then the longest waiting."""
        found = await self.db[URGES].find({"open": True}).sort([("count", -1), ("first_urged_at", 1)]).to_list(limit)
        return cast(list[dict[str, Any]], found)
