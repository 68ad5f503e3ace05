from __future__ import annotations

from shared import context
from shared.contracts.platform import Canary
from shared.messaging.outbox import _Clock, build_envelope, outbox_record


def test_write_stamps_never_repeat_or_go_back() -> None:
    clock = _Clock()
    stamps = [clock.now() for _ in range(10000)]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_record_carries_order_trace_and_routing() -> None:
    token = context.correlation_id.set("req-9")
    try:
        env = build_envelope(Canary(canary_id="c9", origin="o"), producer="order")
    finally:
        context.correlation_id.reset(token)
    record = outbox_record(env, "platform.events", ts=5, seq=2)
    assert record["_id"] == env.event_id and record["pending"] is True
    assert (record["ts"], record["seq"], record["topic"], record["key"]) == (5, 2, "platform.events", "c9")
    assert env.correlation_id == "req-9"
    assert isinstance(record["trace"], dict)
