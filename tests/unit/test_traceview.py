"""The dev trace viewer (deploy/traceview.py): OTLP in, one trace out as a waterfall."""

from __future__ import annotations

from litestar.testing import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from deploy.traceview import Traces, create_app

TRACE = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")


def export(service: str, *spans: Span) -> bytes:
    request = ExportTraceServiceRequest()
    resource = ResourceSpans(scope_spans=[ScopeSpans(spans=list(spans))])
    resource.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
    request.resource_spans.append(resource)
    return request.SerializeToString()


def span(span_id: str, name: str, start_ms: int, end_ms: int, parent: str = "", trace: bytes = TRACE) -> Span:
    return Span(
        trace_id=trace,
        span_id=bytes.fromhex(span_id),
        parent_span_id=bytes.fromhex(parent),
        name=name,
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=1_700_000_000_000_000_000 + start_ms * 1_000_000,
        end_time_unix_nano=1_700_000_000_000_000_000 + end_ms * 1_000_000,
        attributes=[KeyValue(key="http.route", value=AnyValue(string_value="/api/v1/orders"))],
    )


def test_a_trace_sent_by_two_services_shows_as_one_waterfall_parents_first() -> None:
    with TestClient(create_app()) as client:
        # The consumer's span arrives before its parent (another process exports later).
        child = span("00000000000000b2", "order.paid process", 40, 90, parent="00000000000000a1")
        assert client.post("/v1/traces", content=export("fulfilment", child)).status_code == 200
        root = span("00000000000000a1", "POST /api/v1/orders", 0, 100)
        assert client.post("/v1/traces", content=export("order", root)).status_code == 200
        assert client.post("/v1/metrics", content=b"ignored").status_code == 200

        page = client.get(f"/traces/{TRACE.hex()}")
        assert page.status_code == 200
        html = page.text
        assert "2 spans across fulfilment, order" in html
        assert html.index("POST /api/v1/orders") < html.index("order.paid process")
        assert "left:40.00%;width:50.00%" in html  # the child's bar: 40 ms in, 50 ms long of 100
        assert "http.route = /api/v1/orders" in html
        listed = client.get("/").text
        assert f"/traces/{TRACE.hex()}" in listed and "POST /api/v1/orders" in listed
        assert [s["name"] for s in client.get(f"/api/traces/{TRACE.hex()}").json()] == [
            "order.paid process",
            "POST /api/v1/orders",
        ]
        assert client.get("/traces/" + "0" * 32).status_code == 404


def test_the_oldest_traces_are_forgotten_past_the_limit() -> None:
    traces = Traces(limit=2)
    for n in range(3):
        trace = bytes([n + 1]) * 16
        traces.add(export("order", span("00000000000000a1", f"t{n}", 0, 1, trace=trace)))
    assert list(traces.by_id) == [(bytes([2]) * 16).hex(), (bytes([3]) * 16).hex()]
