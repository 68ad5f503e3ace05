"""Prometheus metrics every process exposes: RED per route, consumers, outbox relay, consumer lag.

Each backend service serves `GET /metrics` (Prometheus text format) on its own port; the gateway
serves it only on its internal `METRICS_PORT`, never on the public door. Business signals are
defined in each service's own `metrics.py` and recorded by its use cases.

Label rule: every label has a small, fixed set of values (route templates, handler names, event
types, topics, partitions, SKUs of the catalog, outcomes). Never a user, order or raw-path id,
never a secret. Prometheus adds `job`/`instance` when it scrapes; the scrape configs in
`deploy/prometheus/` and `k8s/` name the job after the service.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from litestar import Controller, HttpMethod, route
from litestar.plugins.prometheus import PrometheusController
from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics, start_http_server

from shared.errors import Problem

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from wsgiref.simple_server import WSGIServer

    from shared.runtime import Runtime

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"

# `<counter>_created` series double what is scraped and say nothing the counters do not.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Latency buckets (seconds) shared by HTTP, handlers and publishing: fine below a second, where
# nearly everything lands, and up to the 30 s a stuck dependency shows as.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# -- HTTP (RED per route) ------------------------------------------------------------------
# Kept by the edge layer (shared.edge), labelled by the route TEMPLATE (`path`), the method, the
# status code and the app (`app_name` = the service). A path no route matches never reaches the
# layer, so raw paths cannot become labels. Names, help texts, labels and buckets are the ones
# Litestar's Prometheus middleware used before (dashboards and alerts in deploy/ read them).
HTTP_PREFIX = "kameng_http"
HTTP_LABELS = ("method", "path", "status_code", "app_name")

HTTP_REQUESTS = Counter(f"{HTTP_PREFIX}_requests_total", "Total requests", HTTP_LABELS)
HTTP_REQUEST_DURATION = Histogram(
    f"{HTTP_PREFIX}_request_duration_seconds", "Request duration, in seconds", HTTP_LABELS, buckets=LATENCY_BUCKETS
)
# `status_code` is always "200" here (a request in progress has none yet); kept so the series
# keep the labels they had.
HTTP_IN_PROGRESS = Gauge(
    f"{HTTP_PREFIX}_requests_in_progress",
    "Total requests currently in progress",
    HTTP_LABELS,
    multiprocess_mode="livesum",
)
HTTP_ERRORS = Counter(f"{HTTP_PREFIX}_requests_error_total", "Total errors in requests", HTTP_LABELS)


class MetricsController(PrometheusController):
    """`GET /metrics` on a service's own port: the process's registry in Prometheus text format."""

    path = METRICS_PATH
    include_in_schema = False
    opt = {"exclude_from_auth": True, "skip_tracing": True}


def metrics_controller() -> type[Controller]:
    return MetricsController


@route(
    [METRICS_PATH, METRICS_PATH + "/{rest:path}"],
    http_method=list(HttpMethod),
    include_in_schema=False,
    opt={"skip_tracing": True},
)
async def refuse_public_metrics() -> None:
    """For the public door (the gateway): metrics are internal, so /metrics answers 404 there and
    is forwarded nowhere, whatever else the door sends on (e.g. unknown paths to the web)."""
    raise Problem(404, "not-found", "Not found", "no such resource")


class MetricsServer:
    """`/metrics` on a port of its own (the gateway's `METRICS_PORT`), apart from the public app:
    prometheus_client's small HTTP server in a thread, stopped with the app."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._server: WSGIServer | None = None

    def start(self) -> None:
        server, _thread = start_http_server(self.port, addr=self.host)
        self._server = server
        log.info("metrics on http://%s:%d%s", self.host, self.port, METRICS_PATH)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# -- consumers -----------------------------------------------------------------------------

CONSUMER_APPLIED = Counter(
    "kameng_consumer_events_applied_total", "Events a handler applied (transaction committed)", ["handler", "type"]
)
CONSUMER_DUPLICATES = Counter(
    "kameng_consumer_duplicates_skipped_total", "Redeliveries skipped by the inbox (seen before)", ["handler"]
)
CONSUMER_RETRIES = Counter(
    "kameng_consumer_retries_total",
    "Handler attempts that failed and were retried (reason: infrastructure or error)",
    ["handler", "reason"],
)
CONSUMER_DEAD_LETTERED = Counter(
    "kameng_consumer_dead_lettered_total",
    "Events sent to <topic>.dlq (handler `none` when the message could not be decoded)",
    ["topic", "handler"],
)
CONSUMER_HANDLING = Histogram(
    "kameng_consumer_handling_duration_seconds",
    "Time from taking an event to being done with it in one handler, retries included",
    ["handler"],
    buckets=LATENCY_BUCKETS,
)

# -- outbox relay --------------------------------------------------------------------------

OUTBOX_PUBLISHED = Counter("kameng_outbox_published_total", "Outbox records published to Kafka", ["topic"])
OUTBOX_PUBLISH = Histogram(
    "kameng_outbox_publish_duration_seconds",
    "One relay batch: from the first publish to the broker's last acknowledgement",
    buckets=LATENCY_BUCKETS,
)
OUTBOX_ERRORS = Counter("kameng_outbox_relay_errors_total", "Relay iterations that failed (retried)")
OUTBOX_BACKLOG = Gauge("kameng_outbox_backlog_records", "Outbox records committed but not yet published")


class _OldestPending:
    """Write time of the oldest unsent record (seconds since the epoch) at the last sample."""

    def __init__(self) -> None:
        self.at: float | None = None

    def age(self) -> float:
        # Computed at scrape time: the age keeps growing between samples (and if sampling stops).
        return 0.0 if self.at is None else max(0.0, time.time() - self.at)


OLDEST_PENDING = _OldestPending()
OUTBOX_OLDEST_AGE = Gauge(
    "kameng_outbox_oldest_pending_age_seconds", "Age of the oldest outbox record not yet published (0 when none)"
)
OUTBOX_OLDEST_AGE.set_function(OLDEST_PENDING.age)

OUTBOX_SAMPLE_SECONDS = 5.0


async def outbox_backlog(rt: Runtime) -> None:
    """Supervised loop: sample the outbox backlog apart from the relay, so a relay stuck on a
    broker that does not answer still shows its growing backlog."""
    while True:
        await rt.relay.measure_backlog()
        await asyncio.sleep(OUTBOX_SAMPLE_SECONDS)


# -- consumer lag --------------------------------------------------------------------------

CONSUMER_LAG = Gauge(
    "kameng_consumer_lag_records",
    "Records on a partition the service's consumer group has not committed yet (end offset - committed)",
    ["group", "topic", "partition"],
)
CONSUMER_LAG_SAMPLED = Gauge(
    "kameng_consumer_lag_sampled_timestamp_seconds", "When consumer lag was last sampled (unix time)"
)
LAG_SAMPLE_SECONDS = 10.0


def consumer_lag_loop(groups: Mapping[str, str]) -> Callable[[Runtime], Awaitable[None]]:
    """A supervised loop sampling the lag of `groups` ({topic: consumer group}) every
    `LAG_SAMPLE_SECONDS`: committed offsets from the group coordinator, end offsets from the
    partition leaders, as `kameng_consumer_lag_records`."""

    async def consumer_lag(rt: Runtime) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        bootstrap = rt.settings.kafka_bootstrap_servers
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
        # No group: this consumer only asks for offsets, it never joins or commits.
        offsets = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        await admin.start()
        try:
            await offsets.start()
            try:
                while True:
                    await sample_lag(admin, offsets, groups)
                    await asyncio.sleep(LAG_SAMPLE_SECONDS)
            finally:
                with suppress(Exception):
                    await offsets.stop()
        finally:
            with suppress(Exception):
                await admin.close()

    return consumer_lag


async def sample_lag(admin: Any, offsets: Any, groups: Mapping[str, str]) -> dict[tuple[str, str, int], int]:
    """Set `kameng_consumer_lag_records` for every partition of the groups' topics; returns
    {(group, topic, partition): lag}. A partition the group never committed on counts from its
    first offset (the consumers start at the earliest record)."""
    from aiokafka import TopicPartition

    await offsets._client.force_metadata_update()
    lags: dict[tuple[str, str, int], int] = {}
    for topic, group in sorted(groups.items()):
        tps = [TopicPartition(topic, p) for p in sorted(offsets.partitions_for_topic(topic) or ())]
        if not tps:
            continue
        committed = await admin.list_consumer_group_offsets(group, partitions=tps)
        ends = await offsets.end_offsets(tps)
        starts = await offsets.beginning_offsets(tps)
        for tp in tps:
            done = committed.get(tp)
            position = done.offset if done is not None and done.offset >= 0 else starts.get(tp, 0)
            lag = max(0, ends.get(tp, 0) - position)
            lags[(group, topic, tp.partition)] = lag
            CONSUMER_LAG.labels(group, topic, str(tp.partition)).set(lag)
    CONSUMER_LAG_SAMPLED.set_to_current_time()
    return lags


def platform_loops(groups: Mapping[str, str]) -> Sequence[Callable[[Runtime], Awaitable[None]]]:
    """The supervised loops every service runs for its metrics."""
    return (outbox_backlog, consumer_lag_loop(groups))
