"""Partner webhooks and their delivery records."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from pymongo import ReturnDocument, UpdateOne

from services.support.domain import DELIVERY_FLOW, DeliveryStatus
from services.support.store.claims import claim_due
from services.support.store.schema import DELIVERIES, WEBHOOKS, Collections, session_of
from shared.messaging.outbox import Tx

LOG_KEEP = 20
"""Attempts kept per delivery in its log."""


class WebhookStore(Collections):
    async def webhooks_of(self, partner_user_id: str, *, tx: Tx | None = None) -> list[dict[str, Any]]:
        """A partner's webhooks, oldest first."""
        found = (
            await self.db[WEBHOOKS]
            .find({"partner_user_id": partner_user_id}, session=session_of(tx))
            .sort("created_at", 1)
            .to_list(None)
        )
        return cast(list[dict[str, Any]], found)

    async def count_webhooks(self, partner_user_id: str) -> int:
        return int(await self.db[WEBHOOKS].count_documents({"partner_user_id": partner_user_id}))

    async def owns_webhook(self, partner_user_id: str, webhook_id: str) -> bool:
        query = {"_id": webhook_id, "partner_user_id": partner_user_id}
        return bool(await self.db[WEBHOOKS].count_documents(query) > 0)

    async def add_webhook(self, doc: dict[str, Any]) -> None:
        await self.db[WEBHOOKS].insert_one(doc)

    async def remove_webhook(self, partner_user_id: str, webhook_id: str) -> bool:
        """Remove the partner's webhook and cancel what it still had to send; False if not theirs."""
        result = await self.db[WEBHOOKS].delete_one({"_id": webhook_id, "partner_user_id": partner_user_id})
        if result.deleted_count == 0:
            return False
        await self.db[DELIVERIES].update_many(
            {"webhook_id": webhook_id, **DELIVERY_FLOW.guard(DeliveryStatus.CANCELLED)},
            {"$set": {"status": DeliveryStatus.CANCELLED.value}},
        )
        return True

    async def webhooks_by_id(self, webhook_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {h["_id"]: h for h in await self.db[WEBHOOKS].find({"_id": {"$in": webhook_ids}}).to_list(None)}

    # -- deliveries -----------------------------------------------------------------------------

    async def queue_deliveries(self, records: list[dict[str, Any]], *, tx: Tx) -> None:
        if records:
            await self.db[DELIVERIES].insert_many(records, session=tx.session)

    async def deliveries(
        self, query: dict[str, Any], *, newest_first: bool, skip: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        sort = [("created_at", -1), ("_id", 1)] if newest_first else [("created_at", 1)]
        coll = self.db[DELIVERIES]
        docs = await coll.find(query).sort(sort).skip(skip).limit(limit).to_list(None)
        return docs, await coll.count_documents(query)

    async def delivery(self, query: dict[str, Any]) -> dict[str, Any] | None:
        return cast(dict[str, Any] | None, await self.db[DELIVERIES].find_one(query))

    async def requeue_delivery(
        self, query: dict[str, Any], *, now: datetime, note: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Queue a dead or delivered delivery again, attempts reset; None if none such matches."""
        doc = await self.db[DELIVERIES].find_one_and_update(
            {**query, **DELIVERY_FLOW.guard(DeliveryStatus.PENDING)},
            {
                "$set": {"status": DeliveryStatus.PENDING.value, "attempts": 0, "next_attempt_at": now},
                "$push": {"log": note},
                "$unset": {"dead_at": ""},
            },
            return_document=ReturnDocument.AFTER,
        )
        return cast(dict[str, Any] | None, doc)

    async def next_delivery_due(self) -> datetime | None:
        """When the earliest pending delivery is due, None when nothing is pending."""
        nxt = await self.db[DELIVERIES].find_one(
            {"status": DeliveryStatus.PENDING.value}, {"next_attempt_at": 1}, sort=[("next_attempt_at", 1)]
        )
        return None if nxt is None else cast(datetime, nxt["next_attempt_at"])

    async def claim_due_deliveries(self, *, now: datetime, lease_until: datetime, limit: int) -> list[dict[str, Any]]:
        return await claim_due(
            self.db[DELIVERIES],
            {"status": DeliveryStatus.PENDING.value, "next_attempt_at": {"$lte": now}},
            sort=[("next_attempt_at", 1)],
            lease={"next_attempt_at": lease_until},
            limit=limit,
        )

    async def save_delivery_outcomes(self, outcomes: list[tuple[str, dict[str, Any], dict[str, Any] | None]]) -> None:
        """(delivery id, fields to set, attempt to log or None) for each, in one bulk write."""
        if not outcomes:
            return
        updates = []
        for delivery_id, fields, attempt in outcomes:
            update: dict[str, Any] = {"$set": fields}
            if attempt is not None:
                update["$push"] = {"log": {"$each": [attempt], "$slice": -LOG_KEEP}}
            updates.append(UpdateOne({"_id": delivery_id}, update))
        await self.db[DELIVERIES].bulk_write(updates, ordered=False)
