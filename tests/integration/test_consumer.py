"""Consumers against the real broker and database: inbox deduplication, crash before the offset
commit, dead-lettering of bad events, retries, and DLQ replay."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator

import msgspec
import pytest
from aiokafka import AIOKafkaProducer

from shared.contracts.envelope import Envelope, encode_envelope, new_id, utcnow
from shared.faults import CRASH_EXIT_CODE
from shared.messaging import dlq
from shared.messaging.outbox import Tx, build_envelope
from shared.messaging.scan import header
from tests.integration.kit import Node, read_topic, settings_for, thing_event


@pytest.fixture
async def producer(infra: dict[str, str]) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=infra["KAFKA_BOOTSTRAP_SERVERS"])
    await p.start()
    yield p
    await p.stop()


def _node(**overrides: object) -> Node:
    suffix = new_id()[:10]
    return Node(settings_for(f"svc-{suffix}", consumer_backoff_initial_ms=10, **overrides), thing_event(suffix))


@pytest.fixture
async def consumer_node(test_env: dict[str, str]) -> AsyncIterator[Node]:
    node = _node(consumer_max_attempts=3)
    node.consume()
    await node.start()
    yield node
    await node.close()


async def _send(producer: AIOKafkaProducer, topic: str, value: bytes, key: bytes = b"k", **headers: str) -> None:
    await producer.send_and_wait(topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()])


def _envelope(node: Node, thing_id: str, amount: int) -> Envelope:
    return build_envelope(node.model(thing_id=thing_id, amount=amount), producer="test")


async def test_duplicate_event_is_applied_once(consumer_node: Node, producer: AIOKafkaProducer) -> None:
    env = _envelope(consumer_node, "dup", 7)
    for _ in range(3):  # the same event id three times, e.g. a producer retry plus a replay
        await _send(producer, consumer_node.topic, encode_envelope(env), key=b"dup", event_id=env.event_id)

    await consumer_node.wait_for(lambda: _delivered(consumer_node, env.event_id, 3))
    doc = await consumer_node.mongo.db.things.find_one({"_id": "dup"})
    assert doc == {"_id": "dup", "applied": 1, "total": 7}
    assert await consumer_node.mongo.db.inbox.count_documents({}) == 1


async def test_malformed_events_go_to_the_dlq_and_the_consumer_keeps_going(
    consumer_node: Node, producer: AIOKafkaProducer
) -> None:
    topic = consumer_node.topic
    unknown = msgspec.structs.replace(_envelope(consumer_node, "x", 1), type="test.no-such-event")
    bad_data = msgspec.structs.replace(_envelope(consumer_node, "x", 1), data=msgspec.Raw(b'{"thing_id": 5}'))
    await _send(producer, topic, b"this is not json", event_id="garbage")
    await _send(producer, topic, encode_envelope(unknown), event_id=unknown.event_id)
    await _send(producer, topic, encode_envelope(bad_data), event_id=bad_data.event_id)
    good = _envelope(consumer_node, "good", 2)
    await _send(producer, topic, encode_envelope(good), key=b"good", event_id=good.event_id)

    await consumer_node.wait_for(lambda: _applied(consumer_node, "good", 1))
    letters = {
        d.event_id: d for d in await dlq.read_dead_letters(consumer_node.settings.kafka_bootstrap_servers, topic)
    }
    assert set(letters) == {"garbage", unknown.event_id, bad_data.event_id}
    assert letters["garbage"].reason.startswith("invalid envelope")
    assert "unknown event type 'test.no-such-event'" in letters[unknown.event_id].reason
    assert letters[bad_data.event_id].reason.startswith("invalid test.thing-happened")
    assert letters["garbage"].value == b"this is not json"  # the original, untouched
    assert letters["garbage"].headers["dlq_source_topic"] == topic
    assert await consumer_node.mongo.db.things.count_documents({}) == 1


async def test_rejected_and_failing_events_are_dead_lettered_then_replayable(
    consumer_node: Node, producer: AIOKafkaProducer
) -> None:
    db, topic = consumer_node.mongo.db, consumer_node.topic
    bootstrap = consumer_node.settings.kafka_bootstrap_servers
    await db.flags.insert_one({"_id": "broken"})
    rejected = _envelope(consumer_node, "neg", -1)
    failing = _envelope(consumer_node, "thirteen", 13)
    after = _envelope(consumer_node, "after", 1)
    for env in (rejected, failing, after):
        await _send(producer, topic, encode_envelope(env), key=b"same-key", event_id=env.event_id)

    await consumer_node.wait_for(lambda: _applied(consumer_node, "after", 1))
    letters = {d.event_id: d for d in await dlq.read_dead_letters(bootstrap, topic)}
    assert letters[rejected.event_id].reason == "rejected: amount must not be negative"
    assert letters[rejected.event_id].headers["dlq_attempts"] == "1"  # no retries for a rejection
    assert letters[failing.event_id].reason == "ValueError: unlucky thirteen while broken"
    assert letters[failing.event_id].headers["dlq_attempts"] == "3"  # consumer_max_attempts
    assert await _applied(consumer_node, "thirteen", 0)

    # The bug is fixed; the operator replays the dead letter and it is applied, once.
    await db.flags.delete_one({"_id": "broken"})
    assert await dlq.replay(bootstrap, topic, event_id=failing.event_id) == 1
    await consumer_node.wait_for(lambda: _applied(consumer_node, "thirteen", 1))
    assert await dlq.replay(bootstrap, topic, event_id=failing.event_id) == 1  # replayed twice...
    await consumer_node.wait_for(lambda: _delivered(consumer_node, failing.event_id, 3))
    assert await _applied(consumer_node, "thirteen", 1)  # ...still applied once


async def test_consumer_crash_before_offset_commit_redelivers_and_applies_once(
    test_env: dict[str, str], producer: AIOKafkaProducer
) -> None:
    node = _node()
    await node.setup()
    env = _envelope(node, "crash", 4)
    await _send(producer, node.topic, encode_envelope(env), key=b"crash", event_id=env.event_id)
    worker = [
        sys.executable,
        "-m",
        "tests.integration.worker",
        "consume",
        node.topic.rsplit(".", 1)[1],
        node.settings.service_name,
        "1",
    ]

    # 1st consumer: applies the event (transaction committed), dies before committing the offset.
    first = subprocess.run(
        worker,
        env={**test_env, "KAMENG_FAILPOINTS": "consumer.after-apply"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == CRASH_EXIT_CODE, first.stdout + first.stderr
    assert await node.applied("crash") == 1

    # 2nd consumer of the same group: gets the same event again, and skips it.
    second = subprocess.run(worker, env=test_env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    assert json.loads(second.stdout.strip().splitlines()[-1])["deliveries"] == {env.event_id: 1}
    assert f"skip duplicate event {env.event_id}" in second.stdout
    assert await node.applied("crash") == 1
    node.mongo.close()


async def test_events_from_the_outbox_reach_a_consumer_with_envelope_metadata(consumer_node: Node) -> None:
    async def write(tx: Tx) -> None:
        tx.emit(consumer_node.model(thing_id="via-outbox", amount=3))

    await consumer_node.uow.run(write)
    consumer_node.relay.wake()
    assert await consumer_node.relay._hold_lease()
    await consumer_node.relay.drain_once()
    await consumer_node.wait_for(lambda: _applied(consumer_node, "via-outbox", 1))
    record = (await read_topic(consumer_node.settings.kafka_bootstrap_servers, consumer_node.topic))[0]
    envelope = msgspec.json.decode(record.value, type=Envelope)
    assert record.key == b"via-outbox" and envelope.key == "via-outbox"
    assert header(record, "event_id") == envelope.event_id
    assert envelope.producer == consumer_node.settings.service_name
    assert envelope.version == 1 and envelope.occurred_at <= utcnow()


async def _applied(node: Node, thing_id: str, n: int) -> bool:
    return await node.applied(thing_id) == n


async def _delivered(node: Node, event_id: str, n: int) -> bool:
    return node.deliveries[event_id] >= n


async def test_a_filtered_out_event_costs_no_transaction(test_env: dict[str, str], producer: AIOKafkaProducer) -> None:
    from shared.messaging.consumer import EventRouter

    node = _node()
    router = EventRouter(node.settings.service_name)

    @router.handles(node.model, when=lambda e: e.amount > 10)
    async def big_only(payload: object, ctx: object) -> None:
        await ctx.tx.db.things.insert_one({"_id": payload.thing_id}, session=ctx.tx.session)  # type: ignore[attr-defined]

    router.subscribe(node.broker, node.uow, node.settings)
    await node.start()
    try:
        small, big = _envelope(node, "small", 1), _envelope(node, "big", 99)
        for env in (small, big):
            await _send(producer, node.topic, encode_envelope(env), key=b"k", event_id=env.event_id)
        await node.wait_for(lambda: _exists(node, "big"))
        assert await node.mongo.db.things.count_documents({}) == 1
        assert await node.mongo.db.inbox.count_documents({}) == 1  # the small one never opened a transaction
    finally:
        await node.close()


async def _exists(node: Node, thing_id: str) -> bool:
    return await node.mongo.db.things.find_one({"_id": thing_id}) is not None


async def test_a_backlog_is_applied_in_batches_once_each_and_bad_events_dead_lettered(
    test_env: dict[str, str], producer: AIOKafkaProducer
) -> None:
    """Events waiting when the consumer starts come in polls of many records (Decision 31): each
    good one applied once (duplicates inside the backlog skipped), the bad ones dead-lettered
    without losing their neighbours (order per key: tests/unit/test_consumer_batches.py)."""
    node = _node(consumer_max_attempts=2)
    await node.setup()
    db, topic = node.mongo.db, node.topic
    await db.flags.insert_one({"_id": "broken"})
    good = [_envelope(node, f"k{i % 4}", i + 1) for i in range(24) if i + 1 != 13]
    rejected, failing = _envelope(node, "k1", -5), _envelope(node, "k2", 13)
    backlog = [*good[:10], rejected, good[3], *good[10:16], failing, good[12], *good[16:]]
    for env in backlog:
        key = msgspec.json.decode(env.data)["thing_id"].encode()
        await _send(producer, topic, encode_envelope(env), key=key, event_id=env.event_id)

    node.consume()
    await node.start()
    try:
        await node.wait_for(lambda: _delivered(node, good[-1].event_id, 1))
        await node.wait_for(lambda: _inbox_holds(node, len(good)))
        for k in range(4):
            mine = [e for e in good if msgspec.json.decode(e.data)["thing_id"] == f"k{k}"]
            doc = await db.things.find_one({"_id": f"k{k}"})
            total = sum(msgspec.json.decode(e.data)["amount"] for e in mine)
            assert doc == {"_id": f"k{k}", "applied": len(mine), "total": total}
        letters = {d.event_id for d in await dlq.read_dead_letters(node.settings.kafka_bootstrap_servers, topic)}
        assert letters == {rejected.event_id, failing.event_id}
    finally:
        await node.close()


async def _inbox_holds(node: Node, count: int) -> bool:
    return await node.mongo.db.inbox.count_documents({}) == count
