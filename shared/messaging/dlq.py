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

from aiokafka import AIOKafkaProducer

from shared.config import InfraSettings
from shared.contracts import topics
from shared.messaging.scan import scan


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


async def read_dead_letters(bootstrap: str, topic: str) -> list[DeadLetter]:
    """Every message currently on `<topic>.dlq`."""
    return [
        DeadLetter(
            partition=r.partition,
            offset=r.offset,
            key=r.key,
            value=r.value or b"",
            headers={k: v.decode(errors="replace") for k, v in r.headers or ()},
        )
        for r in await scan(bootstrap, [topics.dlq(topic)])
    ]


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
            print(
                json.dumps(
                    {
                        "partition": d.partition,
                        "offset": d.offset,
                        "event_id": d.event_id,
                        "reason": d.reason,
                        "handler": d.headers.get("dlq_handler"),
                        "failed_at": d.headers.get("dlq_failed_at"),
                    },
                    ensure_ascii=False,
                )
            )
        return 0
    count = asyncio.run(replay(bootstrap, args.topic, event_id=args.event_id))
    print(f"replayed {count} message(s) to {args.topic}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
