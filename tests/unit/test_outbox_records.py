from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from shared import context
from shared.contracts.platform import Canary
from shared.messaging.outbox import Tx, _Clock, build_envelope, outbox_record


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


def test_each_emitted_event_keeps_the_trace_it_was_emitted_in() -> None:
    """A batch of consumed events commits once; each event it emits must still carry the trace
    of the event that caused it (taken at `Tx.emit`), not the one current at the commit."""
    tracer = TracerProvider().get_tracer("test")
    tx = Tx(db=None, session=None, producer="order")  # type: ignore[arg-type]
    ids = []
    for n in ("a", "b"):
        with tracer.start_as_current_span(n) as span:
            tx.emit(Canary(canary_id=n, origin="o"))
            ids.append(format(span.get_span_context().trace_id, "032x"))
    assert ids[0] != ids[1]
    records = [
        outbox_record(env, topic, ts=1, seq=i, trace=t)
        for i, ((env, topic), t) in enumerate(zip(tx.events, tx.traces, strict=True))
    ]
    assert [r["trace"]["traceparent"].split("-")[1] for r in records] == ids
    assert trace.get_current_span().get_span_context().is_valid is False  # nothing current now
