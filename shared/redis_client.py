"""Redis client factory. Redis holds fast, rebuildable state only (stock counters, reservations,
rate limits, idempotency keys): MongoDB is the truth, and Redis may be flushed at any time."""

from __future__ import annotations

from redis.asyncio import Redis


def connect(url: str, *, timeout: float = 5.0) -> Redis:
    return Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30)
