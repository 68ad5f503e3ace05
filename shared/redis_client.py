"""Redis client factory. Redis holds fast, rebuildable state only (stock counters, holds, rate
limits, idempotency keys): MongoDB is the truth, and Redis may be flushed at any time."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis


def connect(url: str, *, timeout: float = 5.0, max_connections: int = 64) -> Redis:
    """A client whose pool makes callers wait for a free connection (up to `timeout`) under a
    burst, instead of failing with "too many connections" as a plain pool does."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections
