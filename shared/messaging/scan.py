"""Reading a topic from outside any consumer group (relay recovery, DLQ tools, tests).

Reads until the broker has nothing more for a short idle time instead of stopping at the
reported end offsets: the embedded broker (tansu 0.6) reports a high watermark that can lag the
real end when records arrive in batches, and reading a little longer is always safe here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


async def scan(bootstrap: str, topics: Iterable[str], *, since_ms: int | None = None, idle_ms: int = 700) -> list[Any]:
    """Every record of `topics` (all partitions), or those from about `since_ms` on.

    With `since_ms`, a partition the broker says has nothing that recent is skipped; one it
    answers ambiguously for (timestamp -1, as tansu does) is read from the beginning.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not tps:
            return []
        consumer.assign(tps)
        if since_ms is None:
            await consumer.seek_to_beginning(*tps)
        else:
            starts = await consumer.offsets_for_times({tp: since_ms for tp in tps})
            wanted = [tp for tp in tps if starts.get(tp) is not None]
            if not wanted:
                return []
            consumer.assign(wanted)
            for tp in wanted:
                start = starts[tp]
                consumer.seek(tp, start.offset if start.timestamp >= 0 else 0)
        records: list[Any] = []
        while batch := await consumer.getmany(timeout_ms=idle_ms, max_records=5000):
            for recs in batch.values():
                records.extend(recs)
        return records
    finally:
        await consumer.stop()


def header(record: Any, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return str(value.decode(errors="replace"))
    return None
