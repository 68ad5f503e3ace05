"""Operator tool for dead-letter topics: list what failed and why, and replay it.

    kameng-dlq list order.events            # every dead-lettered message with its reason
    kameng-dlq replay order.events          # republish all to order.events
    kameng-dlq replay order.events --event-id 3f2a...

Replaying is safe: consumers deduplicate by event id, so a message that did get applied
somewhere is not applied twice. Reads KAFKA_BOOTSTRAP_SERVERS from the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.config import InfraSettings
from shared.contracts import topics


@dataclass
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @property
    def event_id(self) -> str | None:
        return self.headers.get("event_id")

    @property
    def reason(self) -> str:
        return self.headers.get("dlq_reason", "")


async def read_dead_letters(bootstrap: str, topic: str, *, timeout_ms: int = 2000) -> list[DeadLetter]:
    """Every message currently on `<topic>.dlq`."""
    dlq = topics.dlq(topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    out: list[DeadLetter] = []
    try:
        partitions = consumer.partitions_for_topic(dlq)
        if not partitions:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - no public call
            partitions = consumer.partitions_for_topic(dlq) or set()
        tps = [TopicPartition(dlq, p) for p in sorted(partitions)]
        if not tps:
            return out
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=timeout_ms)
            if not batches:
                break
            for tp, records in batches.items():
                for r in records:
                    out.append(
                        DeadLetter(
                            partition=tp.partition,
                            offset=r.offset,
                            key=r.key,
                            value=r.value or b"",
                            headers={k: v.decode(errors="replace") for k, v in r.headers or ()},
                        )
                    )
                    if r.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
    finally:
        await consumer.stop()
    return out


async def replay(bootstrap: str, topic: str, *, event_id: str | None = None) -> int:
    """Republish dead letters (all, or one event id) to their source topic; returns the count."""
    letters = [d for d in await read_dead_letters(bootstrap, topic) if event_id in (None, d.event_id)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for d in letters:
            headers = [(k, v.encode()) for k, v in d.headers.items() if not k.startswith("dlq_")]
            headers.append(("dlq_replayed_from", f"{topics.dlq(topic)}:{d.partition}:{d.offset}".encode()))
            await producer.send_and_wait(topic, d.value, key=d.key, headers=headers)
    finally:
        await producer.stop()
    return len(letters)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kameng-dlq", description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="show dead-lettered messages of a topic")
    ls.add_argument("topic")
    rp = sub.add_parser("replay", help="republish dead-lettered messages to their topic")
    rp.add_argument("topic")
    rp.add_argument("--event-id")
    args = parser.parse_args(argv)
    bootstrap = InfraSettings().kafka_bootstrap_servers
    if args.command == "list":
        for d in asyncio.run(read_dead_letters(bootstrap, args.topic)):
            print(json.dumps({"partition": d.partition, "offset": d.offset, "event_id": d.event_id,
                              "reason": d.reason, "handler": d.headers.get("dlq_handler"),
                              "failed_at": d.headers.get("dlq_failed_at")}, ensure_ascii=False))
        return 0
    count = asyncio.run(replay(bootstrap, args.topic, event_id=args.event_id))
    print(f"replayed {count} message(s) to {args.topic}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
