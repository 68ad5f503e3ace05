"""The one ASGI layer at the HTTP edge of every app: request id, server span and RED metrics.

These were three stacked layers (a request-id middleware, Litestar's OpenTelemetry plugin and its
Prometheus middleware), each wrapping `send`; the OpenTelemetry ASGI middleware also made a child
span per `send`/`receive` and kept duration metrics of its own nobody read. py-spy put about half
of each hop's CPU there (docs/benchmarks.md, "Where the time went"; Decision 32). This layer does
the three jobs with one wrapped `send` and keeps what each guaranteed:

- request id: the caller's `X-Request-Id` when it is valid, else a new one; in
  `scope["state"]["request_id"]`, as `shared.context.correlation_id` while the request runs, and
  echoed on the response;
- server span: continues the caller's W3C trace context (`traceparent`, `tracestate`,
  `baggage`), is named `<METHOD> <route template>` with `http.route`, the status code and an
  error status on 5xx, and is the current span while the handler runs (its spans, the outbox's
  stored trace context and the gateway's forwarded `traceparent` all hang below it);
- RED metrics: `kameng_http_*` labelled by the route template (shared.metrics).

It runs as app middleware, so after routing: the route template is known, and a path no route
matches never reaches it (such a path can become neither a label nor a span name).
`/health` and `/metrics` get a request id but neither span nor metrics: probes and scrapes
would drown the traffic that matters.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from typing import TYPE_CHECKING

from litestar.enums import ScopeType
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

from shared import context
from shared.metrics import HTTP_ERRORS, HTTP_IN_PROGRESS, HTTP_REQUEST_DURATION, HTTP_REQUESTS

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar.types import ASGIApp, Message, Receive, Scope, Send
    from opentelemetry.trace import Tracer, TracerProvider
    from prometheus_client import Counter, Gauge, Histogram

REQUEST_ID_HEADER = b"x-request-id"
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# The headers the global propagator reads (shared.telemetry installs W3C trace context and
# baggage). Picked in the same pass over the headers as the request id.
TRACE_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})
# Probes and scrapes: a request id, nothing else.
QUIET_PREFIXES = ("/health", "/metrics")


def request_ids() -> Callable[[], str]:
    """New request ids: a random prefix per process and a counter, unique across processes and
    restarts like a UUID4 (an id only has to tell requests apart, not be unguessable), for a
    tenth of the cost: `uuid4` reads the OS's random source on every request."""
    prefix = secrets.token_hex(8)
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):016x}"  # 32 hex digits, as a UUID4 hex


def is_quiet(path: str) -> bool:
    """`/health`, `/health/...`, `/metrics`, `/metrics/...` (not `/healthy`)."""
    for prefix in QUIET_PREFIXES:
        if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
            return True
    return False


def edge_middleware(tracer_provider: TracerProvider, service: str | None) -> Callable[[ASGIApp], ASGIApp]:
    """The edge layer for `Litestar(middleware=[...])`. With `service` None (the web process) no
    RED metrics are kept: only the request id and the span."""
    tracer = tracer_provider.get_tracer("kameng.http")

    def wrap(app: ASGIApp) -> ASGIApp:
        return EdgeMiddleware(app, tracer, service)

    return wrap


class EdgeMiddleware:
    __slots__ = ("app", "gauges", "metrics", "new_request_id", "service", "tracer")

    def __init__(self, app: ASGIApp, tracer: Tracer, service: str | None) -> None:
        self.app = app
        self.tracer = tracer
        self.service = service
        self.new_request_id = request_ids()
        # The labelled children of the RED metrics, per (method, route template, status): asking
        # the metric for them takes a lock and builds the label tuple on every call.
        self.metrics: dict[tuple[str, str, int], tuple[Counter, Histogram, Counter | None]] = {}
        self.gauges: dict[tuple[str, str], Gauge] = {}

    def in_progress(self, method: str, template: str) -> Gauge:
        found = self.gauges.get((method, template))
        if found is None:
            found = self.gauges[(method, template)] = HTTP_IN_PROGRESS.labels(
                method, template, "200", self.service or ""
            )
        return found

    def red(self, method: str, template: str, status: int) -> tuple[Counter, Histogram, Counter | None]:
        found = self.metrics.get((method, template, status))
        if found is None:
            labels = (method, template, str(status), self.service or "")
            errors = HTTP_ERRORS.labels(*labels) if status >= 500 else None
            found = (HTTP_REQUESTS.labels(*labels), HTTP_REQUEST_DURATION.labels(*labels), errors)
            # Bounded by routes x methods x statuses seen: templates, never raw paths, are keys.
            self.metrics[(method, template, status)] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return

        incoming = ""
        carrier: dict[str, str] | None = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                incoming = value.decode("latin-1")
            elif name in TRACE_HEADERS:
                if carrier is None:
                    carrier = {}
                carrier[name.decode("latin-1")] = value.decode("latin-1")
        request_id = incoming if incoming and VALID_REQUEST_ID.match(incoming) else self.new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        echoed = request_id.encode()
        correlation = context.correlation_id.set(request_id)

        quiet = is_quiet(scope["path"])
        status = 0  # until the response starts

        async def send_wrapped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0].lower() != REQUEST_ID_HEADER]
                headers.append((REQUEST_ID_HEADER, echoed))
                message = {**message, "headers": headers}
            await send(message)

        if quiet:
            try:
                await self.app(scope, receive, send_wrapped)
            finally:
                context.correlation_id.reset(correlation)
            return

        method = scope["method"]
        # Set by the router before app middleware runs; never the raw path (label rule).
        template = scope.get("path_template") or "unrouted"
        # Always an explicit parent: without a caller's trace context a new trace starts, never
        # one that happens to be current in this task.
        parent = propagate.extract(carrier) if carrier else Context()
        span = self.tracer.start_span(f"{method} {template}", context=parent, kind=SpanKind.SERVER)
        recording = span.is_recording()
        if recording:
            span.set_attributes({"http.method": method, "http.route": template, "http.target": scope["path"]})
        attached = otel_context.attach(trace.set_span_in_context(span, parent))
        service = self.service
        in_progress = None
        if service is not None:
            in_progress = self.in_progress(method, template)
            in_progress.inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_wrapped)
        except BaseException as exc:
            if status == 0:
                status = 500  # what the server answers for an exception no handler turned into a response
            if recording:
                span.record_exception(exc)
            raise
        finally:
            elapsed = time.perf_counter() - started
            status = status or 200  # returned without a response (as Litestar's middleware counted it)
            if recording:
                span.set_attribute("http.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            span.end()
            otel_context.detach(attached)
            context.correlation_id.reset(correlation)
            if service is not None and in_progress is not None:
                in_progress.dec()
                requests, duration, errors = self.red(method, template, status)
                requests.inc()
                duration.observe(elapsed)
                if errors is not None:
                    errors.inc()
