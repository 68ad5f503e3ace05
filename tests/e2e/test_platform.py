"""The whole platform as separate processes on the real stack: readiness, the bus canary and
one trace across services, and the gateway's edge behaviour."""

from __future__ import annotations

import time

import httpx
import pytest

from deploy.platform import Platform
from deploy.services import BACKEND_SERVICES
from tests.otlp import Collector

SERVER, PRODUCER, CONSUMER = 2, 4, 5  # OTLP protobuf SpanKind values


@pytest.fixture
def gateway(platform: Platform) -> httpx.Client:
    with httpx.Client(base_url=platform.gateway_url, timeout=10) as client:
        yield client


def test_gateway_is_ready_when_every_service_is(gateway: httpx.Client) -> None:
    r = gateway.get("/health/ready")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {name: "ok" for name in ("redis", *BACKEND_SERVICES, "web")}
    assert gateway.get("/health/live").json() == {"status": "ok"}


def test_every_service_reports_its_dependencies(platform: Platform) -> None:
    for name in BACKEND_SERVICES:
        r = httpx.get(platform.url(name) + "/health/ready")
        assert r.status_code == 200
        assert r.json()["checks"] == {"kafka": "ok", "mongodb": "ok", "redis": "ok"}


def _wait_receipt(platform: Platform, service: str, canary_id: str, timeout: float = 20) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{platform.url(service)}/internal/canary/{canary_id}")
        if r.status_code == 200:
            return r.json()  # type: ignore[no-any-return]
        assert r.status_code == 404
        time.sleep(0.1)
    raise AssertionError(f"{service} never received canary {canary_id}")


def test_an_event_crosses_services_over_kafka_in_one_trace(platform: Platform, otlp: Collector) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"
    r = httpx.post(
        platform.url("identity") + "/internal/canary",
        json={"note": "trace me"},
        headers={"traceparent": traceparent},
    )
    assert r.status_code == 201, r.text
    sent = r.json()
    receipts = {name: _wait_receipt(platform, name, sent["canary_id"]) for name in BACKEND_SERVICES}
    assert {rec["event_id"] for rec in receipts.values()} == {sent["event_id"]}
    assert all(rec["origin"] == "identity" for rec in receipts.values())

    # One trace: caller -> identity's HTTP span -> identity's producer span (written to the
    # outbox with the request's context, published by the relay) -> each consumer's span.
    process = otlp.wait_for(lambda s: s.trace_id == trace_id and s.service == "wallet" and s.kind == CONSUMER)[0]
    spans = {s.span_id: s for s in otlp.trace(trace_id)}
    producer = spans[process.parent_span_id]
    assert producer.service == "identity" and producer.kind == PRODUCER
    assert producer.name.startswith("platform.events")
    server = spans[producer.parent_span_id]
    assert server.service == "identity" and server.kind == SERVER and server.name == "POST /internal/canary"
    assert server.parent_span_id == "00f067aa0ba902b7"  # the caller's span
    consumers = otlp.wait_for(
        lambda s: s.trace_id == trace_id and s.kind == CONSUMER and s.parent_span_id == producer.span_id
    )
    deadline = time.monotonic() + 10
    while {s.service for s in consumers} < set(BACKEND_SERVICES) and time.monotonic() < deadline:
        time.sleep(0.2)
        consumers = otlp.find(
            lambda s: s.trace_id == trace_id and s.kind == CONSUMER and s.parent_span_id == producer.span_id
        )
    assert {s.service for s in consumers} == set(BACKEND_SERVICES)


def test_unknown_route_is_a_problem(gateway: httpx.Client) -> None:
    r = gateway.get("/api/v1/no-such-area/1")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"].endswith("/not-found") and body["status"] == 404 and body["title"] and body["detail"]
    # Outside /api, /health and /schema every path is a storefront page: an unknown one is the
    # web's 404 page, still a 404.
    r = gateway.get("/nowhere")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    r = gateway.get("/health/nowhere")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


def test_request_id_is_echoed_or_created(gateway: httpx.Client) -> None:
    assert gateway.get("/health/live", headers={"x-request-id": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = gateway.get("/health/live").headers["x-request-id"]
    assert len(made) == 32


def test_gateway_propagates_trace_and_request_id_to_the_service(gateway: httpx.Client, otlp: Collector) -> None:
    # Announcements, not the catalog tree: the gateway keeps the tree once another test read it
    # (Decision 33), and a kept answer never reaches the service.
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    r = gateway.get(
        "/api/v1/announcements",
        headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01", "x-request-id": "req-trace-1"},
    )
    assert r.status_code == 200 and r.headers["x-request-id"] == "req-trace-1"
    # The support service's server span continues the caller's trace through the gateway.
    served = otlp.wait_for(lambda s: s.trace_id == trace_id and s.service == "support")
    gateway_spans = otlp.wait_for(lambda s: s.trace_id == trace_id and s.service == "gateway")
    assert served and gateway_spans
    # An answer the gateway keeps is traced at the gateway, in the caller's trace, too.
    kept_trace = "1bf7651916cd43dd8448eb211c80319d"
    for _ in range(2):
        gateway.get("/api/v1/catalog/tree", headers={"traceparent": f"00-{kept_trace}-c7ad6b7169203331-01"})
    assert otlp.wait_for(lambda s: s.trace_id == kept_trace and s.service == "gateway")


def test_a_stopped_service_is_503_problem_and_not_ready(platform: Platform, gateway: httpx.Client) -> None:
    platform.stop_service("support")
    try:
        r = gateway.get("/api/v1/announcements")
        assert r.status_code == 503
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"].endswith("/service-unavailable") and "support" in r.json()["detail"]
        assert r.headers["retry-after"]
        ready = gateway.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["support"].startswith("unreachable")
    finally:
        platform.restart("support")
    assert gateway.get("/health/ready").status_code == 200
