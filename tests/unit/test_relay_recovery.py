"""A relay that finds a new broker marks its outbox's recently sent records pending again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest

from shared.config import ServiceSettings
from shared.contracts.envelope import utcnow
from shared.messaging import recovery
from shared.mongo import Mongo


class Result:
    def __init__(self, modified: int) -> None:
        self.modified_count = modified


class FakeCollection:
    def __init__(self, docs: list[dict[str, Any]] | None = None) -> None:
        self.docs = docs or []

    async def find_one(self, query: dict[str, Any]) -> dict[str, Any] | None:
        return next((d for d in self.docs if d["_id"] == query["_id"]), None)

    async def update_one(self, query: dict[str, Any], update: dict[str, Any], upsert: bool = False) -> None:
        doc = await self.find_one(query)
        if doc is None:
            doc = {"_id": query["_id"]}
            self.docs.append(doc)
        doc.update(update["$set"])

    async def update_many(self, query: dict[str, Any], update: dict[str, Any]) -> Result:
        since = query["sent_at"]["$gte"]
        hit = [d for d in self.docs if d.get("sent_at") is not None and d["sent_at"] >= since]
        for d in hit:
            d.update(update["$set"])
            for field in update["$unset"]:
                d.pop(field, None)
        return Result(len(hit))


class FakeMongo:
    def __init__(self, outbox: list[dict[str, Any]]) -> None:
        self.db = {recovery.RELAY_STATE: FakeCollection(), "outbox": FakeCollection(outbox)}


async def test_records_sent_within_the_retention_go_again_only_to_a_new_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = utcnow()
    outbox = [
        {"_id": "recent", "sent_at": now - timedelta(minutes=5)},
        {"_id": "old", "sent_at": now - timedelta(days=10)},
        {"_id": "waiting", "pending": True},
    ]
    mongo = FakeMongo(outbox)
    settings = ServiceSettings(outbox_sent_retention_hours=72)
    broker = {"id": "cluster-a"}

    async def cluster_id(bootstrap: str) -> str:
        return broker["id"]

    monkeypatch.setattr(recovery, "broker_cluster_id", cluster_id)
    m = cast(Mongo, mongo)
    assert await recovery.republish_for_new_broker(m, settings) == 0  # first sight: just remembered
    assert await recovery.republish_for_new_broker(m, settings) == 0  # same broker: nothing
    assert outbox[0].get("pending") is None

    broker["id"] = "cluster-b"
    assert await recovery.republish_for_new_broker(m, settings) == 1
    assert outbox[0]["pending"] is True and "sent_at" not in outbox[0]
    assert outbox[1].get("pending") is None  # past the retention window
    assert await recovery.republish_for_new_broker(m, settings) == 0  # the new broker is now known
