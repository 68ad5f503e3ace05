"""HTTP pieces every Litestar app here uses: request ids, health endpoints, app defaults."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from litestar import Controller, Litestar, get
from litestar.enums import ScopeType
from litestar.openapi import OpenAPIConfig
from litestar.params import Parameter
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.response import Response
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from shared import context
from shared.contracts.envelope import new_id
from shared.errors import EXCEPTION_HANDLERS
from shared.metrics import http_metrics
from shared.strict_bodies import document_unknown_fields, strict_json_body
from shared.telemetry import Telemetry

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Take the caller's X-Request-Id (or make one), make it the correlation id of everything
    this request causes, and echo it on the response."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        incoming = next((v.decode() for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else new_id()
        scope.setdefault("state", {})["request_id"] = request_id
        token = context.correlation_id.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            context.correlation_id.reset(token)

    return middleware


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
    **options: Any,
) -> Litestar:
    """A Litestar app with the defaults every process here shares: request ids, problem+json for
    every error, OpenTelemetry at the edge (health probes and scrapes not traced), our log format,
    and, when `service` names it, Prometheus RED metrics per route template (shared.metrics).
    Serving `/metrics` is the caller's choice: a service on its own port, the gateway apart."""
    middleware: list[Any] = [request_id_middleware]
    if service is not None:
        middleware.append(http_metrics(service).middleware)
    app = Litestar(
        middleware=middleware,
        plugins=[
            OpenTelemetryPlugin(
                OpenTelemetryConfig(
                    tracer_provider=telemetry.tracer_provider,
                    meter_provider=telemetry.meter_provider,
                    exclude=["/health", "/metrics"],
                )
            )
        ],
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
