"""Public (envelope-less) outbox records on the real stack: committed with the transaction,
relayed as the exact bytes given, keyed and headed like any event; an aborted transaction
publishes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.contracts.envelope import new_id
from shared.messaging.broker import ensure_topics
from shared.messaging.outbox import OUTBOX, Tx
from shared.messaging.scan import header
from tests.integration.kit import Node, read_topic, settings_for, thing_event


@pytest.fixture
async def node(test_env: dict[str, str]) -> AsyncIterator[Node]:
    suffix = new_id()[:10]
    n = Node(settings_for(f"pub-{suffix}"), thing_event(suffix))
    await n.start()
    yield n
    await n.close()


async def test_public_message_is_published_as_given_with_the_transaction(node: Node) -> None:
    topic = f"test.public.{new_id()[:8]}"
    await ensure_topics(node.settings.kafka_bootstrap_servers, [topic], partitions=3, replication_factor=1)
    value = b'{"event_id":"e-1","status":"delivered"}'

    async def write(tx: Tx) -> None:
        await tx.db.things.insert_one({"_id": "t1"}, session=tx.session)
        tx.emit(node.model(thing_id="t1", amount=1))
        tx.emit_public(topic=topic, key="order-1", value=value, event_id="e-1", type_="order.status-changed")

    async def aborted(tx: Tx) -> None:
        tx.emit_public(topic=topic, key="order-2", value=b"{}", event_id="e-2", type_="order.status-changed")
        raise RuntimeError("changed my mind")

    await node.uow.run(write)
    with pytest.raises(RuntimeError):
        await node.uow.run(aborted)
    assert await node.mongo.db[OUTBOX].count_documents({}) == 2  # the envelope and the public record

    assert await node.relay._hold_lease()
    assert await node.relay.drain_once() == 2
    records = await read_topic(node.settings.kafka_bootstrap_servers, topic)
    assert [(r.key, r.value) for r in records] == [(b"order-1", value)]  # the bytes, no envelope
    assert header(records[0], "event_id") == "e-1"
    assert header(records[0], "event_type") == "order.status-changed"
    assert await node.relay.drain_once() == 0  # marked sent: never again
