"""Partners' feeds: which partner has a topic, the public events support published for each
(kept for replays), and the replays asked for."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from pymongo import ReturnDocument

from services.support.domain import REPLAY_FLOW, ReplayStatus
from services.support.store.schema import FEED_REPLAYS, PARTNER_EVENTS, PARTNER_FEEDS, Collections, session_of
from shared.messaging.outbox import Tx


class FeedStore(Collections):
    async def open_feed(self, partner_user_id: str, fields: dict[str, Any], *, tx: Tx) -> None:
        """The partner's feed record; the first call makes it, later ones change nothing."""
        await self.db[PARTNER_FEEDS].update_one(
            {"_id": partner_user_id}, {"$setOnInsert": fields}, upsert=True, session=tx.session
        )

    async def feed_of(self, partner_user_id: str) -> dict[str, Any] | None:
        return cast(dict[str, Any] | None, await self.db[PARTNER_FEEDS].find_one({"_id": partner_user_id}))

    async def keep_partner_event(self, doc: dict[str, Any], *, tx: Tx) -> None:
        await self.db[PARTNER_EVENTS].insert_one(doc, session=tx.session)

    async def count_partner_events(self, partner_user_id: str, *, since: datetime, upto: int) -> int:
        query = {"partner_user_id": partner_user_id, "occurred_at": {"$gte": since}, "stamp": {"$lte": upto}}
        return int(await self.db[PARTNER_EVENTS].count_documents(query))

    async def partner_events_after(
        self, partner_user_id: str, *, since: datetime, after: int, upto: int, limit: int
    ) -> list[dict[str, Any]]:
        """The partner's kept events since `since` with a stamp in (after, upto], in publish order."""
        query = {
            "partner_user_id": partner_user_id,
            "occurred_at": {"$gte": since},
            "stamp": {"$gt": after, "$lte": upto},
        }
        found = await self.db[PARTNER_EVENTS].find(query).sort("stamp", 1).limit(limit).to_list(None)
        return cast(list[dict[str, Any]], found)

    # -- replays ----------------------------------------------------------------------------------

    async def replay(self, replay_id: str, *, tx: Tx | None = None) -> dict[str, Any] | None:
        found = await self.db[FEED_REPLAYS].find_one({"_id": replay_id}, session=session_of(tx))
        return cast(dict[str, Any] | None, found)

    async def add_replay(self, doc: dict[str, Any], *, tx: Tx) -> None:
        """Raises DuplicateKeyError when the same request made it first."""
        await self.db[FEED_REPLAYS].insert_one(doc, session=tx.session)

    async def claim_replay(self, *, now: datetime, lease_until: datetime) -> dict[str, Any] | None:
        """One replay to work on (oldest first) that no live worker holds, leased to us. Looked
        for with a read first: the loop polls, and an idle poll should not cost a write."""
        claimable = {**REPLAY_FLOW.guard(ReplayStatus.RUNNING), "lease_until": {"$lt": now}}
        if await self.db[FEED_REPLAYS].find_one(claimable, {"_id": 1}) is None:
            return None
        doc = await self.db[FEED_REPLAYS].find_one_and_update(
            claimable,
            {"$set": {"status": ReplayStatus.RUNNING.value, "lease_until": lease_until}},
            sort=[("requested_at", 1)],
            return_document=ReturnDocument.AFTER,
        )
        return cast(dict[str, Any] | None, doc)

    async def advance_replay(
        self, replay_id: str, *, cursor: int, to: int, published: int, lease_until: datetime, tx: Tx
    ) -> bool:
        """Move the replay's cursor from `cursor` to `to`; False if someone else moved it."""
        result = await self.db[FEED_REPLAYS].update_one(
            {"_id": replay_id, "cursor": cursor, "status": ReplayStatus.RUNNING.value},
            {"$set": {"cursor": to, "lease_until": lease_until}, "$inc": {"published": published}},
            session=tx.session,
        )
        return bool(result.modified_count == 1)

    async def finish_replay(self, replay_id: str, *, at: datetime) -> None:
        await self.db[FEED_REPLAYS].update_one(
            {"_id": replay_id, **REPLAY_FLOW.guard(ReplayStatus.DONE)},
            {"$set": {"status": ReplayStatus.DONE.value, "finished_at": at}, "$unset": {"lease_until": ""}},
        )
