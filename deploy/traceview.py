"""A local trace viewer for `make dev`: an OTLP/HTTP receiver that keeps the newest traces in
memory and shows one trace as a waterfall, so spans can be looked at without Docker or Jaeger.

    python -m deploy.traceview          # HTTP on $PORT (16686, Jaeger's UI port, by default)

- `POST /v1/traces` (OTLP/HTTP protobuf, what every service exports when
  OTEL_EXPORTER_OTLP_ENDPOINT points here); `POST /v1/metrics` and `/v1/logs` are accepted and
  dropped, so the services' exporters stay quiet.
- `GET /` the newest traces; `GET /traces/{trace_id}` one trace as a waterfall (the console's
  "trace" link on an order points here in dev: TRACE_VIEWER_URL); `GET /api/traces/{trace_id}` the
  same spans as JSON.

Dev only: no authentication, memory only, the oldest traces are forgotten past MAX_TRACES.
Production sends the same OTLP to a collector and Jaeger (docker-compose.yml, k8s).
"""

from __future__ import annotations

import colorsys
import hashlib
import os
from collections import OrderedDict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

import uvicorn
from litestar import Litestar, MediaType, Request, get, post
from litestar.exceptions import NotFoundException
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

MAX_TRACES = 5000
LISTED = 100
KINDS = {0: "", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: str
    span_id: str
    parent_span_id: str
    start_ns: int
    end_ns: int
    error: bool
    attributes: dict[str, str]


class Traces:
    """The newest traces, oldest forgotten first."""

    def __init__(self, limit: int = MAX_TRACES) -> None:
        self.limit = limit
        self.by_id: OrderedDict[str, list[Span]] = OrderedDict()

    def add(self, body: bytes) -> int:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        added = 0
        for rs in request.resource_spans:
            service = next((a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), "?")
            for scope in rs.scope_spans:
                for s in scope.spans:
                    span = Span(
                        service=service,
                        name=s.name,
                        kind=KINDS.get(s.kind, ""),
                        span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex(),
                        start_ns=s.start_time_unix_nano,
                        end_ns=max(s.end_time_unix_nano, s.start_time_unix_nano),
                        error=s.status.code == 2,
                        attributes={a.key: _text(a.value) for a in s.attributes},
                    )
                    trace_id = s.trace_id.hex()
                    self.by_id.setdefault(trace_id, []).append(span)
                    self.by_id.move_to_end(trace_id)
                    added += 1
        while len(self.by_id) > self.limit:
            self.by_id.popitem(last=False)
        return added

    def get(self, trace_id: str) -> list[Span]:
        spans = self.by_id.get(trace_id.lower())
        if not spans:
            raise NotFoundException(f"no trace {trace_id} (not received yet, or forgotten)")
        return spans


def _text(value: Any) -> str:
    kind = value.WhichOneof("value")
    return str(getattr(value, kind)) if kind else ""


def in_tree_order(spans: list[Span]) -> list[tuple[int, Span]]:
    """(depth, span) parents before children, siblings by start time; spans whose parent never
    arrived (or was sampled out) start their own branch."""
    ids = {s.span_id for s in spans}
    children: dict[str, list[Span]] = {}
    for s in spans:
        children.setdefault(s.parent_span_id if s.parent_span_id in ids else "", []).append(s)
    ordered: list[tuple[int, Span]] = []

    def walk(parent: str, depth: int) -> None:
        for child in sorted(children.get(parent, []), key=lambda s: s.start_ns):
            ordered.append((depth, child))
            walk(child.span_id, depth + 1)

    walk("", 0)
    return ordered


def _colour(service: str) -> str:
    hue = int(hashlib.blake2s(service.encode()).hexdigest()[:4], 16) / 0xFFFF
    r, g, b = colorsys.hls_to_rgb(hue, 0.55, 0.55)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


STYLE = """
body{font:14px system-ui,sans-serif;margin:1.5rem;color:#1f2328}
table{border-collapse:collapse;width:100%}td,th{padding:3px 6px;text-align:left;white-space:nowrap}
tr:nth-child(even){background:#f6f8fa}a{color:#0969da}.num{text-align:right;font-variant-numeric:tabular-nums}
.lane{position:relative;width:55%;min-width:300px}.bar{position:absolute;top:4px;height:14px;border-radius:3px}
.err{outline:2px solid #cf222e}.svc{font-size:12px;color:#57606a}
"""


def waterfall(trace_id: str, spans: list[Span]) -> str:
    start = min(s.start_ns for s in spans)
    total = max(max(s.end_ns for s in spans) - start, 1)
    rows = []
    for depth, s in in_tree_order(spans):
        left = (s.start_ns - start) / total * 100
        width = max((s.end_ns - s.start_ns) / total * 100, 0.3)
        detail = escape("\n".join(f"{k} = {v}" for k, v in sorted(s.attributes.items())), quote=True)
        rows.append(
            f'<tr title="{detail}"><td style="padding-left:{6 + depth * 16}px">{escape(s.name)}'
            f' <span class="svc">{escape(s.service)} {escape(s.kind)}</span></td>'
            f'<td class="num">{(s.end_ns - s.start_ns) / 1e6:.1f} ms</td>'
            f'<td class="lane"><div class="bar{" err" if s.error else ""}" style="left:{left:.2f}%;'
            f'width:{width:.2f}%;background:{_colour(s.service)}"></div></td></tr>'
        )
    services = sorted({s.service for s in spans})
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>trace {escape(trace_id)}</title>"
        f"<style>{STYLE}</style></head><body><p><a href='/'>← traces</a></p>"
        f"<h1>Trace <code>{escape(trace_id)}</code></h1>"
        f"<p>{len(spans)} spans across {', '.join(escape(s) for s in services)}; "
        f"{total / 1e6:.1f} ms from {_when(start)} UTC. Hover a row for its attributes.</p>"
        f"<table><tr><th>span</th><th class=num>duration</th><th>timeline</th></tr>{''.join(rows)}</table>"
        "</body></html>"
    )


def listing(traces: Traces) -> str:
    rows = []
    for trace_id, spans in list(reversed(traces.by_id.items()))[:LISTED]:
        root = in_tree_order(spans)[0][1]
        start = min(s.start_ns for s in spans)
        took = (max(s.end_ns for s in spans) - start) / 1e6
        rows.append(
            f"<tr><td>{_when(start)}</td><td><a href='/traces/{trace_id}'>{escape(root.name)}</a></td>"
            f"<td>{escape(', '.join(sorted({s.service for s in spans})))}</td>"
            f"<td class=num>{len(spans)}</td><td class=num>{took:.1f} ms</td></tr>"
        )
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>Kameng traces</title><style>{STYLE}</style>"
        "</head><body><h1>Newest traces</h1><p>make dev's services export their spans here. "
        "An order's trace: the console's order page, or <code>/traces/&lt;trace id&gt;</code>.</p>"
        "<table><tr><th>started (UTC)</th><th>root span</th><th>services</th><th class=num>spans</th>"
        f"<th class=num>duration</th></tr>{''.join(rows)}</table></body></html>"
    )


def create_app(traces: Traces | None = None) -> Litestar:
    store = traces or Traces()

    @post("/v1/traces", status_code=200)
    async def receive(request: Request[Any, Any, Any]) -> bytes:
        store.add(await request.body())
        return b""  # an empty ExportTraceServiceResponse

    @post(["/v1/metrics", "/v1/logs"], status_code=200)
    async def drop(request: Request[Any, Any, Any]) -> bytes:
        return b""

    @get("/", media_type=MediaType.HTML)
    async def index() -> str:
        return listing(store)

    @get("/traces/{trace_id:str}", media_type=MediaType.HTML)
    async def trace_page(trace_id: str) -> str:
        return waterfall(trace_id, store.get(trace_id))

    @get("/api/traces/{trace_id:str}")
    async def trace_json(trace_id: str) -> list[dict[str, Any]]:
        return [asdict(s) for s in store.get(trace_id)]

    @get(["/health/live", "/health/ready"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar([receive, drop, index, trace_page, trace_json, health])


def main() -> None:
    uvicorn.run(create_app(), host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "16686")))


if __name__ == "__main__":
    main()
