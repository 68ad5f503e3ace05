"""Wiring of the gateway: edge authentication and rate limits (edge.py), the proxy, the merged
OpenAPI document, health (its Redis and every service's readiness), CORS, and the edge defaults
every app has (request ids, problem+json, body size limit, telemetry)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial

import httpx
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin

from services.gateway.apikeys import ApiKeyDirectory
from services.gateway.docs import DocsController
from services.gateway.edge import Edge
from services.gateway.idempotency import Idempotency
from services.gateway.openapi import OpenApiDocument
from services.gateway.proxy import create_upstream_client, forward
from services.gateway.settings import GatewaySettings
from shared import redis_client
from shared.http import Check, create_http_app, health_controller
from shared.telemetry import Telemetry, setup_logging, setup_telemetry


async def _upstream_ready(client: httpx.AsyncClient, base: str) -> None:
    response = await client.get(f"{base}/health/ready", timeout=2.0)
    if response.status_code != 200:
        checks = (
            response.json().get("checks", {})
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        failing = ", ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")
        raise ConnectionError(f"not ready ({failing or response.status_code})")


def create_app(settings: GatewaySettings | None = None, *, telemetry: Telemetry | None = None) -> Litestar:
    settings = settings or GatewaySettings()
    setup_logging(settings.service_name, settings.log_level)
    telemetry = telemetry or setup_telemetry(settings.service_name)
    redis = redis_client.connect(settings.redis_url, max_connections=256)
    upstream = create_upstream_client(
        settings.upstream_max_connections,
        settings.upstream_timeout_seconds,
        settings.upstream_connect_timeout_seconds,
    )
    keys = ApiKeyDirectory(
        upstream, settings.identity_url, settings.jwt_secret.get_secret_value(), settings.api_key_cache_seconds
    )

    def checks(scope: str) -> Mapping[str, Check]:
        result: dict[str, Check] = {"redis": redis.ping}
        if scope == "edge":
            return result
        for name, base in settings.upstreams().items():
            result[name] = partial(_upstream_ready, upstream, base)
        return result

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await upstream.aclose()
            await redis.aclose()

    cors = (
        CORSConfig(
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "X-Request-Id",
                "X-Api-Key",
                "X-Timestamp",
                "X-Nonce",
                "X-Signature",
            ],
            expose_headers=["X-Request-Id", "Retry-After"],
            max_age=settings.cors_max_age_seconds,
        )
        if settings.cors_allow_origins
        else None
    )
    app = create_http_app(
        telemetry=telemetry,
        openapi=OpenAPIConfig(
            title="Kameng API",
            version="1.0.0",
            description="The public HTTP API of Kameng, served by the gateway. Errors are RFC 9457 "
            "application/problem+json.",
            path="/schema/gateway",
            render_plugins=[ScalarRenderPlugin(path="/")],
        ),
        max_body_bytes=settings.request_max_body_bytes,
        route_handlers=[health_controller(checks), DocsController, forward],
        lifespan=[lifespan],
        cors_config=cors,
    )
    app.state.settings = settings
    app.state.redis = redis
    app.state.upstream = upstream
    app.state.edge = Edge(settings, redis, keys)
    app.state.idempotency = Idempotency(
        redis,
        secret=settings.jwt_secret.get_secret_value(),
        ttl_seconds=settings.idempotency_ttl_seconds,
        pending_seconds=settings.idempotency_pending_seconds,
    )
    app.state.openapi_document = OpenApiDocument(upstream, settings.upstreams(), settings.openapi_cache_seconds)
    return app
