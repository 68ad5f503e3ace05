"""The gateway's one typed Deps, built once at start-up and injected into its controllers as
`deps`: settings, its Redis, the pooled client of the services, the edge (who is calling), the
Idempotency-Key store and the merged OpenAPI document."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from services.gateway.apikeys import ApiKeyDirectory
from services.gateway.cache import KeptAnswers
from services.gateway.edge import Edge
from services.gateway.openapi import OpenApiDocument
from services.gateway.settings import GatewaySettings
from services.gateway.store import IdempotencyStore, run_one
from services.gateway.upstream import Forwarder, create_upstream_client
from shared.redis_client import CommandLink


@dataclass
class GatewayDeps:
    settings: GatewaySettings
    link: CommandLink
    """The gateway's Redis: the edge's one round trip per request (rate limits, token checks,
    the facts of kept answers) and the Idempotency-Key records."""
    upstream: httpx.AsyncClient
    """The gateway's own calls: readiness, OpenAPI documents, API-key look-ups."""
    forwarder: Forwarder
    """Where forwarded requests travel (a keep-alive pool)."""
    upstreams: dict[str, str]
    """Service name -> base URL (settings.upstreams(), read once)."""
    edge: Edge
    idempotency: IdempotencyStore
    kept: KeptAnswers
    """Catalog answers sent again while their facts stand (Decision 33)."""
    openapi: OpenApiDocument

    async def aclose(self) -> None:
        await self.upstream.aclose()
        await self.forwarder.aclose()
        await self.link.aclose()

    async def redis_ready(self) -> None:
        await run_one(self.link, "PING")


def build(settings: GatewaySettings) -> GatewayDeps:
    link = CommandLink(settings.redis_url, max_connections=256)
    client = create_upstream_client(
        settings.upstream_max_connections,
        settings.upstream_timeout_seconds,
        settings.upstream_connect_timeout_seconds,
    )
    secret = settings.jwt_secret.get_secret_value()
    keys = ApiKeyDirectory(client, settings.identity_url, secret, settings.api_key_cache_seconds)
    return GatewayDeps(
        settings=settings,
        link=link,
        upstream=client,
        forwarder=Forwarder(
            settings.upstream_max_connections,
            settings.upstream_timeout_seconds,
            settings.upstream_connect_timeout_seconds,
        ),
        upstreams=settings.upstreams(),
        edge=Edge(settings, link, keys),
        idempotency=IdempotencyStore(
            link,
            secret=secret,
            ttl_seconds=settings.idempotency_ttl_seconds,
            pending_seconds=settings.idempotency_pending_seconds,
        ),
        kept=KeptAnswers(max_age_seconds=settings.kept_answer_max_age_seconds),
        openapi=OpenApiDocument(client, settings.upstreams(), settings.openapi_cache_seconds),
    )
