"""The partner feed: where a partner reads its own topic, and replays of its events."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post

from services.support.deps import SupportDeps
from services.support.schemas import FeedReplayRequest, replay_view
from services.support.usecases import feed
from shared.auth import Caller
from shared.contracts.support import partner_event_schema
from shared.idempotency import IdempotencyHeader, idempotency_key


class PartnerFeedController(Controller):
    tags = ["partner feed"]

    @get("/api/v1/partner/feed", summary="The partner's own topic, servers, consumer-group prefix and schema")
    async def where(self, deps: SupportDeps, caller: Caller) -> dict[str, str]:
        return await feed.feed_info(deps, caller.user_id)

    @get("/api/v1/partner/feed/schema", summary="JSON Schema of the events on the partner's topic (v1)")
    async def schema(self, caller: Caller) -> dict[str, object]:
        return partner_event_schema()

    @post(
        "/api/v1/partner/feed/replay",
        status_code=202,
        summary="Publish the partner's events since a time (at most 30 days) again, same event_ids",
    )
    async def replay(
        self, deps: SupportDeps, caller: Caller, data: FeedReplayRequest, idempotency: IdempotencyHeader = None
    ) -> dict[str, Any]:
        doc, _ = await feed.request_replay(deps, caller.user_id, data.since, key=idempotency_key(idempotency))
        return replay_view(doc)

    @get("/api/v1/partner/feed/replays/{replay_id:str}", summary="How far a replay got")
    async def replay_status(self, deps: SupportDeps, caller: Caller, replay_id: str) -> dict[str, Any]:
        return replay_view(await feed.replay_of(deps, caller.user_id, replay_id))
