"""The order projections of support and assistant on the real database: a status change is
applied by one guarded write (`shared.mongo.newest_wins`, no read first), and a replayed older
change, alone or later in the same batch, never winds the projection back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.assistant.store import ORDERS as ASSISTANT_ORDERS
from services.assistant.store import AssistantStore
from services.support.store import ORDERS as SUPPORT_ORDERS
from services.support.store import SupportStore
from shared.contracts.envelope import new_id
from shared.messaging.outbox import Tx, UnitOfWork
from shared.mongo import Mongo, connect

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PLACED, PAID, DELIVERED = T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)


@pytest.fixture
async def mongo(infra: dict[str, str]) -> AsyncIterator[Mongo]:
    m = connect(infra["MONGODB_URL"], f"test_projections_{new_id()[:10]}")
    yield m
    await m.client.drop_database(m.db.name)
    m.close()


def _support_fields(status: str, at: datetime) -> dict[str, Any]:
    return {"user_id": "u1", "status": status, "sku_id": "s1", "quantity": 1, "total_cents": 1000, "at": at}


async def test_support_keeps_the_newest_status_without_reading_first(mongo: Mongo) -> None:
    store, uow, order_id = SupportStore(mongo.db), UnitOfWork(mongo, producer="support"), new_id()

    async def project(*changes: tuple[str, datetime]) -> None:
        async def write(tx: Tx) -> None:
            for status, at in changes:
                await store.project_order(order_id, _support_fields(status, at), tx=tx)

        await uow.run(write)

    # One batch: paid, then delivered, then a replay of paid (older) in the same bulk write.
    await project(("paid", PAID), ("delivered", DELIVERED), ("paid", PAID))
    doc = await mongo.db[SUPPORT_ORDERS].find_one({"_id": order_id})
    assert doc is not None and (doc["status"], doc["at"]) == ("delivered", DELIVERED)
    # A later batch replays the placing: still delivered.
    await project(("pending_payment", PLACED))
    doc = await mongo.db[SUPPORT_ORDERS].find_one({"_id": order_id})
    assert doc is not None and (doc["status"], doc["at"], doc["user_id"]) == ("delivered", DELIVERED, "u1")
    # A newer change applies; a value that looks like a field path is stored as written.
    refunded = {**_support_fields("refunded", DELIVERED + timedelta(seconds=1)), "sku_id": "$status"}
    await uow.run(lambda tx: store.project_order(order_id, refunded, tx=tx))
    doc = await mongo.db[SUPPORT_ORDERS].find_one({"_id": order_id})
    assert doc is not None and (doc["status"], doc["sku_id"]) == ("refunded", "$status")
    assert await mongo.db[SUPPORT_ORDERS].count_documents({}) == 1


async def test_assistant_keeps_the_newest_status_and_the_first_paid_and_delivered_times(mongo: Mongo) -> None:
    store, uow, order_id = AssistantStore(mongo.db), UnitOfWork(mongo, producer="assistant"), new_id()
    fields = {"user_id": "u1", "sku_id": "s1", "quantity": 1, "total_cents": 1000}

    async def change(*changes: tuple[str, datetime]) -> None:
        async def write(tx: Tx) -> None:
            for status, at in changes:
                await store.order_status(tx, order_id, {**fields, "status": status}, at)

        await uow.run(write)

    # The status change comes before the order's placing is projected (two topics): created.
    await change(("paid", PAID))
    doc = await mongo.db[ASSISTANT_ORDERS].find_one({"_id": order_id})
    assert doc is not None
    assert (doc["status"], doc["status_at"], doc["paid_at"], doc["created_at"]) == ("paid", PAID, PAID, PAID)
    await change(("delivered", DELIVERED), ("paid", PAID), ("pending_payment", PLACED))
    doc = await mongo.db[ASSISTANT_ORDERS].find_one({"_id": order_id})
    assert doc is not None
    assert (doc["status"], doc["status_at"], doc["delivered_at"]) == ("delivered", DELIVERED, DELIVERED)
    assert (doc["paid_at"], doc["created_at"]) == (PAID, PAID)  # kept once, never moved
    # A second delivery (a re-issue) later keeps the first delivered time.
    await change(("delivered", DELIVERED + timedelta(minutes=5)))
    doc = await mongo.db[ASSISTANT_ORDERS].find_one({"_id": order_id})
    assert doc is not None and doc["delivered_at"] == DELIVERED and doc["status_at"] == DELIVERED + timedelta(minutes=5)
