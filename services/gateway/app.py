"""Wiring of the gateway: edge authentication and rate limits (edge.py), the forwards to the
services and the web (api.py, usecases.py), the merged OpenAPI document, health (its Redis and
every upstream's readiness), CORS, and the edge defaults every app has (request ids,
problem+json, body size limit, telemetry). No logic here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from services.gateway import upstream
from services.gateway.api import CONTROLLERS, direct_forward
from services.gateway.deps import GatewayDeps, build
from services.gateway.settings import GatewaySettings
from shared.http import Check, create_http_app, health_controller
from shared.metrics import MetricsServer, refuse_public_metrics
from shared.telemetry import Telemetry, setup_logging, setup_telemetry

CORS_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Request-Id",
    "X-Api-Key",
    "X-Timestamp",
    "X-Nonce",
    "X-Signature",
]


def create_app(settings: GatewaySettings | None = None, *, telemetry: Telemetry | None = None) -> Litestar:
    settings = settings or GatewaySettings()
    setup_logging(settings.service_name, settings.log_level)
    telemetry = telemetry or setup_telemetry(settings.service_name)
    deps = build(settings)

    def checks(scope: str) -> Mapping[str, Check]:
        result: dict[str, Check] = {"redis": deps.redis_ready}
        if scope == "edge":
            return result
        for name, base in settings.upstreams().items():
            result[name] = partial(upstream.ready, deps.upstream, base)
        if settings.web_url:
            result["web"] = partial(upstream.ready, deps.upstream, settings.web_url)
        return result

    # Prometheus scrapes the gateway on its own port; the public port refuses /metrics.
    metrics = MetricsServer(settings.host, settings.metrics_port) if settings.metrics_port else None

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if metrics is not None:
            metrics.start()
        try:
            yield
        finally:
            if metrics is not None:
                metrics.stop()
            await deps.aclose()

    def provide_deps() -> GatewayDeps:
        return deps

    cors = (
        CORSConfig(
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=CORS_HEADERS,
            expose_headers=["X-Request-Id", "Retry-After"],
            max_age=settings.cors_max_age_seconds,
        )
        if settings.cors_allow_origins
        else None
    )
    return create_http_app(
        telemetry=telemetry,
        openapi=OpenAPIConfig(
            title="Kameng API",
            version="1.0.0",
            description="The public HTTP API of Kameng, served by the gateway. Errors are RFC 9457 "
            "application/problem+json.",
            path="/schema/gateway",
            # JSON only: the interactive page is the gateway's (`/api/docs`, vendored assets).
            render_plugins=[JsonRenderPlugin()],
        ),
        max_body_bytes=settings.request_max_body_bytes,
        service=settings.service_name,
        middleware=[direct_forward(deps)],
        route_handlers=[health_controller(checks), refuse_public_metrics, *CONTROLLERS],
        dependencies={"deps": Provide(provide_deps, sync_to_thread=False, use_cache=True)},
        lifespan=[lifespan],
        cors_config=cors,
    )
