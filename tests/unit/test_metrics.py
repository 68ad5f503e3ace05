"""Prometheus metrics of the platform pieces: RED per route template, `/metrics` kept off the
public door and served on the gateway's METRICS_PORT, consumer, relay and lag metrics, and the
label rule (nothing that grows without bound)."""

from __future__ import annotations

import importlib
import re
import socket
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from litestar import Controller, get
from litestar.openapi import OpenAPIConfig
from litestar.params import FromPath
from litestar.testing import TestClient
from prometheus_client import REGISTRY

from deploy.services import BACKEND_SERVICES
from services.gateway.app import create_app as create_gateway
from services.gateway.settings import GatewaySettings
from shared import metrics
from shared.config import ServiceSettings
from shared.contracts.envelope import encode_envelope
from shared.contracts.platform import Canary
from shared.errors import Problem
from shared.http import create_http_app
from shared.messaging import consumer as consumer_module
from shared.messaging.consumer import Dispatcher, EventRouter, HandlerContext, RejectEvent
from shared.messaging.inbox import AlreadyProcessed
from shared.messaging.outbox import build_envelope
from shared.messaging.relay import OutboxRelay
from shared.telemetry import setup_telemetry


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- HTTP ----------------------------------------------------------------------------------


class Things(Controller):
    path = "/things"

    @get("/{thing_id:str}")
    async def one(self, thing_id: FromPath[str]) -> dict[str, str]:
        if thing_id == "missing":
            raise Problem(404, "not-found", "Not found", "no such thing")
        if thing_id == "boom":
            raise RuntimeError("bug")
        return {"id": thing_id}


def service_app() -> Any:
    return create_http_app(
        telemetry=setup_telemetry("metrics-test", instrument_libraries=False),
        openapi=OpenAPIConfig(title="t", version="1"),
        max_body_bytes=1000,
        service="thingsvc",
        route_handlers=[Things, metrics.metrics_controller()],
    )


def test_red_metrics_per_route_template_never_the_raw_path() -> None:
    route = "/things/{thing_id}"

    def http(name: str, status: str) -> float:
        return value(name, app_name="thingsvc", method="GET", path=route, status_code=status)

    before = {s: http("kameng_http_requests_total", s) for s in ("200", "404", "500")}
    before_errors = http("kameng_http_requests_error_total", "500")
    with TestClient(service_app()) as client:
        for thing in ("a-7731", "b-9912", "missing", "boom"):
            client.get(f"/things/{thing}")
        client.get("/no-such-route/12345")
        exposed = client.get("/metrics")
    assert exposed.status_code == 200
    assert exposed.headers["content-type"].startswith("text/plain")
    assert http("kameng_http_requests_total", "200") == before["200"] + 2
    assert http("kameng_http_requests_total", "404") == before["404"] + 1
    assert http("kameng_http_requests_total", "500") == before["500"] + 1
    assert http("kameng_http_requests_error_total", "500") == before_errors + 1
    assert http("kameng_http_request_duration_seconds_count", "200") >= 2
    text = exposed.text
    assert 'path="/things/{thing_id}"' in text
    for raw in ("a-7731", "b-9912", "12345", "no-such-route"):
        assert raw not in text  # a raw path never becomes a label value
    assert 'path="/metrics"' not in text  # scrapes are not counted as traffic


def test_gateway_refuses_metrics_publicly_and_serves_them_on_its_metrics_port() -> None:
    port = free_port()
    app = create_gateway(
        GatewaySettings(metrics_port=port), telemetry=setup_telemetry("gw", instrument_libraries=False)
    )
    with TestClient(app) as client:
        for path in ("/metrics", "/metrics/", "/metrics/anything"):
            for method in ("GET", "POST", "HEAD"):
                answer = client.request(method, path)
                assert answer.status_code == 404, (method, path)
        client.get("/api/v1/no-such-api/42")
        internal = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert internal.status_code == 200
        assert "kameng_http_requests_total" in internal.text
        assert 'app_name="gateway"' in internal.text
        assert 'path="/api/v1/{path}"' in internal.text
        assert "_created" not in internal.text  # no extra series per counter
        assert "no-such-api" not in internal.text
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)  # stopped with the app


def test_gateway_without_a_metrics_port_opens_none() -> None:
    app = create_gateway(GatewaySettings(), telemetry=setup_telemetry("gw", instrument_libraries=False))
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 404


# -- consumers -----------------------------------------------------------------------------


@dataclass
class FakeUow:
    """Claims (the inbox rows) count only when the handler's work commits, as in MongoDB."""

    claimed: set[tuple[str, str]] = field(default_factory=set)

    async def run(self, fn: Any) -> Any:
        claims: list[tuple[str, str]] = []
        result = await fn(SimpleNamespace(db=self, session=claims))
        self.claimed.update(claims)
        return result


async def fake_claim(db: FakeUow, session: list[tuple[str, str]], handler: str, envelope: Any) -> None:
    if (handler, envelope.key) in db.claimed:
        raise AlreadyProcessed
    session.append((handler, envelope.key))


@dataclass
class FakeBroker:
    published: list[tuple[str, bytes]] = field(default_factory=list)

    async def publish(self, body: bytes, topic: str, **_: Any) -> None:
        self.published.append((topic, body))


def message(payload: Canary) -> Any:
    body = encode_envelope(build_envelope(payload, producer="elsewhere"))
    raw = SimpleNamespace(topic="platform.events", partition=0, offset=7, key=b"k", value=body, headers=[])
    return SimpleNamespace(raw_message=raw, body=body)


def dispatcher(router: EventRouter, broker: FakeBroker) -> Dispatcher:
    settings = ServiceSettings(consumer_max_attempts=2, consumer_backoff_initial_ms=1, consumer_backoff_max_ms=1)
    return Dispatcher(router, broker, FakeUow(), settings)  # type: ignore[arg-type]


async def test_consumer_counts_applied_duplicates_retries_dead_letters_and_duration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(consumer_module, "claim", fake_claim)
    router = EventRouter("mtest")
    fails_once: set[str] = set()

    @router.handles(Canary)
    async def on_canary(event: Canary, ctx: HandlerContext) -> None:
        if event.note == "flaky" and event.canary_id not in fails_once:
            fails_once.add(event.canary_id)
            raise ValueError("first try fails")
        if event.note == "broken":
            raise ValueError("always fails")
        if event.note == "reject":
            raise RejectEvent("never applicable")

    handler = "mtest.on_canary"
    applied = value("kameng_consumer_events_applied_total", handler=handler, type="platform.canary")
    duplicates = value("kameng_consumer_duplicates_skipped_total", handler=handler)
    retries = value("kameng_consumer_retries_total", handler=handler, reason="error")
    dead = value("kameng_consumer_dead_lettered_total", topic="platform.events", handler=handler)
    undecodable = value("kameng_consumer_dead_lettered_total", topic="platform.events", handler="none")
    handled = value("kameng_consumer_handling_duration_seconds_count", handler=handler)

    broker = FakeBroker()
    d = dispatcher(router, broker)
    # Failure series exist at 0 from the start, so the first dead letter is an increase.
    assert (
        REGISTRY.get_sample_value(
            "kameng_consumer_dead_lettered_total", {"topic": "platform.events", "handler": handler}
        )
        == dead
    )
    await d.dispatch(message(Canary(canary_id="c1", origin="x")))
    await d.dispatch(message(Canary(canary_id="c1", origin="x")))  # redelivered
    await d.dispatch(message(Canary(canary_id="c2", origin="x", note="flaky")))
    await d.dispatch(message(Canary(canary_id="c3", origin="x", note="broken")))
    await d.dispatch(message(Canary(canary_id="c4", origin="x", note="reject")))
    junk = SimpleNamespace(
        raw_message=SimpleNamespace(topic="platform.events", partition=0, offset=9, key=b"", value=b"x", headers=[]),
        body=b"not an event",
    )
    await d.dispatch(junk)

    assert value("kameng_consumer_events_applied_total", handler=handler, type="platform.canary") == applied + 2
    assert value("kameng_consumer_duplicates_skipped_total", handler=handler) == duplicates + 1
    assert value("kameng_consumer_retries_total", handler=handler, reason="error") == retries + 2  # flaky 1, broken 1
    assert value("kameng_consumer_dead_lettered_total", topic="platform.events", handler=handler) == dead + 2
    assert value("kameng_consumer_dead_lettered_total", topic="platform.events", handler="none") == undecodable + 1
    assert value("kameng_consumer_handling_duration_seconds_count", handler=handler) == handled + 5
    assert [t for t, _ in broker.published] == ["platform.events.dlq"] * 3


# -- relay ---------------------------------------------------------------------------------


class FakeOutbox:
    def __init__(self, pending: list[dict[str, Any]]) -> None:
        self.pending = pending

    async def count_documents(self, query: dict[str, Any]) -> int:
        return len(self.pending)

    async def find_one(self, query: dict[str, Any], projection: Any, sort: Any) -> dict[str, Any] | None:
        return min(self.pending, key=lambda d: (d["ts"], d["seq"])) if self.pending else None


async def test_relay_backlog_and_age_of_the_oldest_unsent_record() -> None:
    written = time.time() - 42
    outbox = FakeOutbox([{"ts": int(written * 1e9), "seq": 0}, {"ts": int((written + 30) * 1e9), "seq": 0}])
    relay = OutboxRelay(SimpleNamespace(db={"outbox": outbox}), None, ServiceSettings())  # type: ignore[arg-type]
    assert await relay.measure_backlog() == (2, pytest.approx(written, abs=0.01))
    assert value("kameng_outbox_backlog_records") == 2
    assert 41 < value("kameng_outbox_oldest_pending_age_seconds") < 50  # computed when scraped
    outbox.pending.clear()
    assert await relay.measure_backlog() == (0, None)
    assert value("kameng_outbox_backlog_records") == 0
    assert value("kameng_outbox_oldest_pending_age_seconds") == 0


# -- consumer lag --------------------------------------------------------------------------


class FakeOffsets:
    """End and first offsets per partition, as a group-less consumer reports them."""

    def __init__(self) -> None:
        self._client = SimpleNamespace(force_metadata_update=self._noop)

    async def _noop(self) -> None:
        return None

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return {0, 1, 2} if topic == "order.events" else None

    async def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: 100 for tp in tps}

    async def beginning_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: 10 for tp in tps}


class FakeAdmin:
    async def list_consumer_group_offsets(self, group: str, partitions: list[Any]) -> dict[Any, Any]:
        assert group == "wallet.order.events"
        by_partition = {0: 100, 1: 60, 2: -1}  # caught up, 40 behind, never committed
        return {tp: SimpleNamespace(offset=by_partition[tp.partition]) for tp in partitions}


async def test_consumer_lag_per_topic_and_partition() -> None:
    lags = await metrics.sample_lag(FakeAdmin(), FakeOffsets(), {"order.events": "wallet.order.events"})
    assert lags == {
        ("wallet.order.events", "order.events", 0): 0,
        ("wallet.order.events", "order.events", 1): 40,
        ("wallet.order.events", "order.events", 2): 90,
    }
    assert value("kameng_consumer_lag_records", group="wallet.order.events", topic="order.events", partition="1") == 40
    assert time.time() - value("kameng_consumer_lag_sampled_timestamp_seconds") < 5


# -- the label rule ------------------------------------------------------------------------

# Every label a Kameng metric may carry; each has a small fixed set of values. A new label must be
# added here on purpose, after checking it cannot grow with users, orders or raw paths.
BOUNDED_LABELS = {
    "app_name",
    "method",
    "path",  # a route template (group_path), never the raw path
    "status_code",
    "handler",
    "type",
    "reason",
    "topic",
    "group",
    "partition",
    "delivery_mode",
    "stage",  # placed, paid, delivered, refunded
    "outcome",
    "channel",  # the payment channels
    "sku",  # SKUs of the catalog: as many as staff create, not per order or user
}
FORBIDDEN = re.compile(r"user|order_id|account|email|ip|token|secret|key|card|id$")


def test_every_kameng_metric_uses_only_bounded_labels_and_no_secret_names() -> None:
    for service in BACKEND_SERVICES:
        importlib.import_module(f"services.{service}.app")  # registers whatever each service defines

    families = [m for m in REGISTRY.collect() if m.name.startswith("kameng_")]
    assert len(families) >= 10
    for family in families:
        for sample in family.samples:
            labels = set(sample.labels) - {"le"}
            assert labels <= BOUNDED_LABELS, (family.name, labels - BOUNDED_LABELS)
            for label in labels:
                assert not FORBIDDEN.search(label), (family.name, label)
