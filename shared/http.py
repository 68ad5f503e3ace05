"""HTTP pieces every Litestar app here uses: the edge layer (request ids, spans, RED metrics:
shared.edge), health endpoints, app defaults."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

from litestar import Controller, Litestar, get
from litestar.openapi import OpenAPIConfig
from litestar.params import Parameter
from litestar.response import Response
from litestar.types import ASGIApp

from shared.edge import edge_middleware
from shared.errors import EXCEPTION_HANDLERS
from shared.strict_bodies import document_unknown_fields, strict_json_body
from shared.telemetry import Telemetry

Check = Callable[[], Awaitable[Any]]


async def run_checks(checks: Mapping[str, Check], limit_seconds: float = 2.0) -> dict[str, str]:
    """Run dependency checks concurrently: {"mongodb": "ok", "kafka": "unreachable: ..."}."""

    async def one(check: Check) -> str:
        try:
            result = await asyncio.wait_for(check(), limit_seconds)
        except TimeoutError:
            return "timeout"
        except Exception as exc:
            return f"unreachable: {type(exc).__name__}: {exc}"[:300]
        return "ok" if result in (None, True) else str(result)

    results = await asyncio.gather(*(one(c) for c in checks.values()))
    return dict(zip(checks.keys(), results, strict=True))


def health_controller(
    checks_provider: Callable[[str], Mapping[str, Check]],
    details: Callable[[], Mapping[str, Any]] | None = None,
) -> type[Controller]:
    """`/health/live` (the process runs) and `/health/ready` (every dependency answers).

    `checks_provider(scope)` gives the checks to run; `?scope=edge` lets the gateway's own
    readiness probe ignore the services behind it (so one service down does not take every
    gateway replica out of the load balancer), while the default `all` reports the platform."""

    class HealthController(Controller):
        path = "/health"
        tags = ["health"]
        include_in_schema = True

        @get("/live", summary="Liveness", opt={"exclude_from_auth": True, "skip_tracing": True})
        async def live(self) -> dict[str, str]:
            return {"status": "ok"}

        @get(
            "/ready",
            summary="Readiness: 200 when every dependency answers, else 503",
            opt={"exclude_from_auth": True, "skip_tracing": True},
        )
        async def ready(
            self,
            # `scope` is a name Litestar reserves for the ASGI scope, so the query parameter is
            # read under another name: as `scope: str` it silently received the ASGI scope dict.
            readiness_scope: Literal["all", "edge"] = Parameter(query="scope", default="all"),
        ) -> Response[dict[str, Any]]:
            checks = await run_checks(checks_provider(readiness_scope))
            ok = all(v == "ok" for v in checks.values())
            body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "checks": checks}
            if details is not None:
                body.update(details())
            return Response(body, status_code=200 if ok else 503)

    return HealthController


def create_http_app(
    *,
    telemetry: Telemetry,
    openapi: OpenAPIConfig,
    max_body_bytes: int,
    service: str | None = None,
    middleware: Sequence[Callable[[ASGIApp], ASGIApp]] = (),
    **options: Any,
) -> Litestar:
    """A Litestar app with the defaults every process here shares: problem+json for every error,
    our log format, and one edge layer (shared.edge) for request ids, the server span (health
    probes and scrapes not traced) and, when `service` names it, Prometheus RED metrics per route
    template. Serving `/metrics` is the caller's choice: a service on its own port, the gateway
    apart. `middleware` runs inside the edge layer, after routing."""
    app = Litestar(
        # One layer, not three (request ids, the OpenTelemetry plugin, the Prometheus
        # middleware): they cost half of each hop's CPU (Decision 32).
        middleware=[edge_middleware(telemetry.tracer_provider, service), *middleware],
        exception_handlers=EXCEPTION_HANDLERS,
        logging_config=None,  # shared.telemetry.setup_logging owns the log format
        openapi_config=openapi,
        request_max_body_size=max_body_bytes,
        before_request=strict_json_body,
        debug=False,
        **options,
    )
    document_unknown_fields(app)
    return app
