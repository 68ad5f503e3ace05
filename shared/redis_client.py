"""Redis client factory. Redis holds fast, rebuildable state only (stock counters, holds, rate
limits, idempotency keys): MongoDB is the truth, and Redis may be flushed at any time."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


def connect(url: str, *, timeout: float = 5.0, max_connections: int = 64) -> Redis:
    """A client whose pool makes callers wait for a free connection (up to `timeout`) under a
    burst, instead of failing with "too many connections" as a plain pool does.

    A command that meets a broken connection is retried twice on a fresh one (50-200 ms apart):
    after Redis restarted, every pooled connection is dead, and without the retry each of them
    failed one request with a 503 long after Redis was back (issue 12, tests/chaos). Timeouts are
    not retried, so a hung Redis still answers 503 within `timeout`."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 2),
        retry_on_error=[RedisConnectionError],
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections
