"""The HTTP edge layer (shared/edge.py): request ids, the server span continuing the caller's
trace, RED metrics per route template, and probes kept out of spans and metrics."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from litestar import Controller, get
from litestar.openapi import OpenAPIConfig
from litestar.params import FromPath
from litestar.testing import TestClient
from litestar.types import Message, Receive, Scope, Send
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY

from shared import context
from shared.edge import EdgeMiddleware, is_quiet
from shared.errors import Problem
from shared.http import create_http_app, health_controller
from shared.telemetry import Telemetry, setup_telemetry

SERVICE = "edgesvc"
ROUTE = "/gadgets/{gadget_id}"
CALLER_SPAN = "b7ad6b7169203331"
# The app's own provider, apart from the process's global one, so its spans can be read here.
SPANS = InMemorySpanExporter()
PROVIDER = TracerProvider()
PROVIDER.add_span_processor(SimpleSpanProcessor(SPANS))


class Gadgets(Controller):
    path = "/gadgets"

    @get("/{gadget_id:str}")
    async def one(self, gadget_id: FromPath[str]) -> dict[str, Any]:
        if gadget_id == "missing":
            raise Problem(404, "not-found", "Not found", "no such gadget")
        if gadget_id == "boom":
            raise RuntimeError("bug")
        # A span the handler makes must hang below the server span.
        with PROVIDER.get_tracer("test").start_as_current_span("inner") as inner:
            inner_parent = format(inner.get_span_context().span_id, "016x")
        return {"id": gadget_id, "correlation_id": context.correlation_id.get(), "inner": inner_parent}


@pytest.fixture
def spans() -> InMemorySpanExporter:
    SPANS.clear()
    return SPANS


@pytest.fixture(scope="module")
def client() -> Any:
    setup_telemetry("edge-test", instrument_libraries=False)  # installs the W3C propagator
    app = create_http_app(
        telemetry=Telemetry(tracer_provider=PROVIDER, meter_provider=MeterProvider()),
        openapi=OpenAPIConfig(title="t", version="1"),
        max_body_bytes=1000,
        service=SERVICE,
        route_handlers=[Gadgets, health_controller(lambda scope: {})],
    )
    with TestClient(app) as test_client:
        yield test_client


def server_spans(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]


def metric(name: str, status: str, path: str = ROUTE) -> float:
    labels = {"method": "GET", "path": path, "status_code": status, "app_name": SERVICE}
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- request id ----------------------------------------------------------------------------


def test_a_valid_caller_request_id_is_kept_echoed_and_is_the_correlation_id(client: TestClient[Any]) -> None:
    answer = client.get("/gadgets/a1", headers={"x-request-id": "req-42:a.b_c"})
    assert answer.headers.get_list("x-request-id") == ["req-42:a.b_c"]
    assert answer.json()["correlation_id"] == "req-42:a.b_c"


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "ünïcode", "a/b", ""])
def test_an_invalid_request_id_is_replaced_by_a_new_one(client: TestClient[Any], bad: str) -> None:
    answer = client.get("/gadgets/a1", headers={"x-request-id": bad.encode()})
    made = answer.headers["x-request-id"]
    assert made != bad and 1 <= len(made) <= 128
    assert answer.json()["correlation_id"] == made


def test_each_request_without_an_id_gets_its_own(client: TestClient[Any]) -> None:
    first, second = (client.get("/gadgets/a1").headers["x-request-id"] for _ in range(2))
    assert first != second


# -- server span ---------------------------------------------------------------------------


def test_the_server_span_continues_the_callers_trace(client: TestClient[Any], spans: InMemorySpanExporter) -> None:
    trace_id = secrets.token_hex(16)
    answer = client.get("/gadgets/g-9131", headers={"traceparent": f"00-{trace_id}-{CALLER_SPAN}-01"})
    assert answer.status_code == 200
    [server] = server_spans(spans)
    assert format(server.context.trace_id, "032x") == trace_id
    assert server.parent is not None and format(server.parent.span_id, "016x") == CALLER_SPAN
    assert server.name == f"GET {ROUTE}"  # the template: ids never become span names
    assert server.attributes is not None
    assert server.attributes["http.route"] == ROUTE
    assert server.attributes["http.status_code"] == 200
    assert server.status.status_code == StatusCode.UNSET
    [inner] = [s for s in spans.get_finished_spans() if s.name == "inner"]
    assert inner.parent is not None and inner.parent.span_id == server.context.span_id


def test_without_a_traceparent_a_new_trace_starts(client: TestClient[Any], spans: InMemorySpanExporter) -> None:
    client.get("/gadgets/a1")
    client.get("/gadgets/a2")
    first, second = server_spans(spans)
    assert first.parent is None and second.parent is None
    assert first.context.trace_id != second.context.trace_id


def test_a_5xx_marks_the_span_as_an_error_and_a_4xx_does_not(
    client: TestClient[Any], spans: InMemorySpanExporter
) -> None:
    assert client.get("/gadgets/boom").status_code == 500
    assert client.get("/gadgets/missing").status_code == 404
    boom, missing = server_spans(spans)
    assert boom.status.status_code == StatusCode.ERROR
    assert boom.attributes is not None and boom.attributes["http.status_code"] == 500
    assert missing.status.status_code == StatusCode.UNSET


def test_probes_get_a_request_id_but_no_span_and_no_metrics(
    client: TestClient[Any], spans: InMemorySpanExporter
) -> None:
    answer = client.get("/health/live", headers={"x-request-id": "probe-1"})
    assert answer.status_code == 200 and answer.headers["x-request-id"] == "probe-1"
    assert spans.get_finished_spans() == ()
    assert metric("kameng_http_requests_total", "200", path="/health/live") == 0


def test_quiet_paths() -> None:
    for path in ("/health", "/health/live", "/health/ready", "/metrics", "/metrics/x"):
        assert is_quiet(path), path
    for path in ("/healthy", "/metricsx", "/api/v1/health", "/"):
        assert not is_quiet(path), path


# -- RED metrics ---------------------------------------------------------------------------


def test_red_metrics_are_labelled_by_the_route_template(client: TestClient[Any]) -> None:
    before = {s: metric("kameng_http_requests_total", s) for s in ("200", "404", "500")}
    errors = metric("kameng_http_requests_error_total", "500")
    observed = metric("kameng_http_request_duration_seconds_count", "200")
    for gadget in ("x-1", "x-2", "missing", "boom"):
        client.get(f"/gadgets/{gadget}")
    assert metric("kameng_http_requests_total", "200") == before["200"] + 2
    assert metric("kameng_http_requests_total", "404") == before["404"] + 1
    assert metric("kameng_http_requests_total", "500") == before["500"] + 1
    assert metric("kameng_http_requests_error_total", "500") == errors + 1
    assert metric("kameng_http_request_duration_seconds_count", "200") == observed + 2
    assert metric("kameng_http_requests_in_progress", "200") == 0  # every request ended
    assert metric("kameng_http_requests_total", "200", path="/gadgets/x-1") == 0  # never the raw path


# -- an exception no handler answered ------------------------------------------------------


def test_an_exception_before_the_response_counts_as_a_500_and_resets_the_context() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sent: list[Message] = []

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("bug")

    async def collect(message: Message) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.disconnect"}

    scope: Any = {"type": "http", "method": "POST", "path": "/raw/1", "path_template": "/raw/{n}", "headers": []}
    edge = EdgeMiddleware(broken, provider.get_tracer("t"), "rawsvc")
    labels = {"method": "POST", "path": "/raw/{n}", "status_code": "500", "app_name": "rawsvc"}
    before = REGISTRY.get_sample_value("kameng_http_requests_error_total", labels) or 0.0

    async def request() -> str | None:
        with pytest.raises(RuntimeError):
            await edge(scope, receive, collect)
        return context.correlation_id.get()  # in the task that ran the request

    assert asyncio.run(request()) is None
    assert REGISTRY.get_sample_value("kameng_http_requests_error_total", labels) == before + 1
    [span] = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.events and span.events[0].name == "exception"
    assert scope["state"]["request_id"] and sent == []
