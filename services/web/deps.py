"""The web's one typed Deps, built once at start-up: settings, Redis (sessions only), the public
API client, the session store and the page cache. Pages receive it as `deps: WebDeps` (Litestar
DI); most pages only need the per-request `Visitor` (visitor.py), which holds it."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from services.web.cache import PageCache
from services.web.client import Api
from services.web.session import Sessions
from services.web.settings import WebSettings
from shared import redis_client


@dataclass(frozen=True)
class WebDeps:
    settings: WebSettings
    redis: Redis
    api: Api
    sessions: Sessions
    cache: PageCache

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.redis.aclose()


def build(settings: WebSettings) -> WebDeps:
    redis = redis_client.connect(settings.redis_url, max_connections=128)
    api = Api(settings.gateway_url, timeout=settings.api_timeout_seconds, max_connections=settings.api_max_connections)
    sessions = Sessions(
        redis, api, ttl_seconds=settings.session_ttl_seconds, refresh_margin_seconds=settings.refresh_margin_seconds
    )
    return WebDeps(
        settings=settings,
        redis=redis,
        api=api,
        sessions=sessions,
        cache=PageCache(settings.page_cache_seconds, settings.page_cache_entries),
    )
