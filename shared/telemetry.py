"""One OpenTelemetry setup per process: traces, metrics, trace ids in logs.

- `service.name` comes from the service (OTEL_SERVICE_NAME wins when set).
- Spans and metrics go out over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set; tests pass
  an in-memory exporter instead (or point the endpoint at a collector they run).
- pymongo, redis and httpx are instrumented when spans are exported; the HTTP edge
  (shared.edge) and Kafka (FastStream middleware) are wired where those are created. No
  instrumentation records statements or payloads: card keys and other secrets never reach a span.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

from opentelemetry import metrics, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Sampler
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


@dataclass
class Telemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


_current: Telemetry | None = None


def setup_telemetry(
    service_name: str,
    *,
    span_exporter: SpanExporter | None = None,
    metric_readers: list[MetricReader] | None = None,
    instrument_libraries: bool = True,
) -> Telemetry:
    """Install the global tracer and meter providers (once per process)."""
    global _current
    if _current is not None:
        return _current
    resource = Resource.create(
        {SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service_name), SERVICE_VERSION: "0.1.0"}
    )
    exporting = span_exporter is not None or bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    tracer_provider = TracerProvider(resource=resource, sampler=_sampler(exporting))
    readers = list(metric_readers or [])
    if span_exporter is not None:
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    elif exporting:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    propagate.set_global_textmap(CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()]))
    # The libraries' spans (each Redis and MongoDB call) only cost where nothing exports them.
    if instrument_libraries and exporting:
        _instrument_libraries(tracer_provider, meter_provider)
    _current = Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    return _current


def _sampler(exporting: bool) -> Sampler | None:
    """OTEL_TRACES_SAMPLER when set (under load: `parentbased_traceidratio` with
    OTEL_TRACES_SAMPLER_ARG, docs/operations.md), else every trace, except that a process that
    exports nowhere records no span at all: the trace context still crosses every hop and still
    names the trace in log lines, without the cost of spans nobody reads (Decision 24)."""
    if os.environ.get("OTEL_TRACES_SAMPLER") or exporting:
        return None  # the SDK's own choice: the environment's sampler, or parent-based always-on
    return ALWAYS_OFF


def _instrument_libraries(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    # capture_statement stays off: a statement could carry secrets (card keys, tokens).
    PymongoInstrumentor().instrument(tracer_provider=tracer_provider, capture_statement=False)
    RedisInstrumentor().instrument(tracer_provider=tracer_provider, sanitize_query=True)
    HTTPXClientInstrumentor().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)


class TraceIdFilter(logging.Filter):
    """Adds `trace_id` and `span_id` of the current span to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else "-"
        record.span_id = format(ctx.span_id, "016x") if ctx.is_valid else "-"
        return True


def setup_logging(service_name: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(TraceIdFilter())
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)-5s {service_name} %(name)s trace=%(trace_id)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Per-connection chatter from the clients is not useful at INFO.
    for noisy in ("aiokafka", "pymongo", "httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def current_trace_id() -> str | None:
    """The W3C trace id (32 hex digits) of the span this code runs in; None outside a trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
