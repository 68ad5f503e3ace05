"""The transactional outbox and its relay against the real broker and database."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from shared.contracts.envelope import new_id
from shared.faults import CRASH_EXIT_CODE
from shared.messaging.outbox import OUTBOX, Tx
from shared.messaging.relay import OutboxRelay
from tests.integration.kit import Node, read_topic, settings_for, thing_event


@pytest.fixture
async def node(test_env: dict[str, str]) -> AsyncIterator[Node]:
    suffix = new_id()[:10]
    n = Node(settings_for(f"svc-{suffix}", outbox_lease_seconds=1.0), thing_event(suffix))
    await n.setup()
    await n.broker.connect()
    yield n
    await n.close()


async def test_aborted_transaction_publishes_nothing(node: Node) -> None:
    class Boom(Exception):
        pass

    async def write_then_fail(tx: Tx) -> None:
        await tx.db.things.insert_one({"_id": "t1", "applied": 1}, session=tx.session)
        tx.emit(node.model(thing_id="t1", amount=5))
        raise Boom

    with pytest.raises(Boom):
        await node.uow.run(write_then_fail)

    assert await node.mongo.db.things.count_documents({}) == 0
    assert await node.mongo.db[OUTBOX].count_documents({}) == 0
    assert await node.relay.drain_once() == 0
    assert await read_topic(node.settings.kafka_bootstrap_servers, node.topic) == []


async def test_committed_events_are_published_once_in_order(node: Node) -> None:
    async def write(tx: Tx) -> None:
        await tx.db.things.insert_one({"_id": "t1"}, session=tx.session)
        for amount in range(1, 6):
            tx.emit(node.model(thing_id="t1", amount=amount))

    await node.uow.run(write)
    assert await node.relay._hold_lease()
    assert await node.relay.drain_once() == 5
    assert await node.relay.drain_once() == 0  # nothing left: marked sent

    records = await read_topic(node.settings.kafka_bootstrap_servers, node.topic)
    ids = [dict(r.headers)["event_id"].decode() for r in records]
    assert len(ids) == 5 and len(set(ids)) == 5
    # One key -> one partition -> the order of the transaction.
    assert [int(r.value.split(b'"amount":')[1].split(b"}")[0]) for r in records] == [1, 2, 3, 4, 5]
    assert await node.mongo.db[OUTBOX].count_documents({"pending": True}) == 0


async def test_relay_crash_between_publish_and_mark_does_not_publish_twice(
    node: Node, test_env: dict[str, str]
) -> None:
    suffix = node.topic.rsplit(".", 1)[1]
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.integration.worker",
            "relay-crash",
            suffix,
            node.settings.service_name,
            "3",
        ],
        env={**test_env, "KAMENG_FAILPOINTS": "relay.after-publish"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == CRASH_EXIT_CODE, child.stdout + child.stderr
    bootstrap = node.settings.kafka_bootstrap_servers
    # The crashed relay put all three on the topic but marked none of them sent.
    assert len(await read_topic(bootstrap, node.topic)) == 3
    assert await node.mongo.db[OUTBOX].count_documents({"pending": True}) == 3

    # A new relay takes over once the dead one's lease (1 s here) runs out.
    successor = OutboxRelay(node.mongo, node.broker, node.settings)
    await node.wait_for(successor._hold_lease, timeout=10)
    assert await successor.drain_once() == 0  # recovery found all three already published

    records = await read_topic(bootstrap, node.topic)
    counts = Counter(dict(r.headers)["event_id"].decode() for r in records)
    assert len(counts) == 3 and set(counts.values()) == {1}, counts
    assert await node.mongo.db[OUTBOX].count_documents({"pending": True}) == 0


async def test_relay_republishes_what_a_crash_left_unpublished(node: Node) -> None:
    """Pending records that never reached the broker are published by the next holder."""

    async def write(tx: Tx) -> None:
        tx.emit(node.model(thing_id="a", amount=1))
        tx.emit(node.model(thing_id="b", amount=2))

    await node.uow.run(write)  # committed, relay never ran: as if it died before publishing
    relay = OutboxRelay(node.mongo, node.broker, node.settings)
    assert await relay._hold_lease()  # runs recovery: finds nothing on the topic
    assert await relay.drain_once() == 2
    assert len(await read_topic(node.settings.kafka_bootstrap_servers, node.topic)) == 2


async def test_only_the_lease_holder_publishes(node: Node) -> None:
    first = OutboxRelay(node.mongo, node.broker, settings_for(node.settings.service_name, outbox_lease_seconds=30))
    second = OutboxRelay(node.mongo, node.broker, settings_for(node.settings.service_name, outbox_lease_seconds=30))
    assert await first._hold_lease()
    assert not await second._hold_lease()
    await first.release()
    assert await second._hold_lease()
