"""Redis down while a buyer waits: the answer is a retryable 503, never a 500.

Stock holds live in Redis; without it the service can neither promise stock nor release it, so a
quote, an order or a cancel is refused with `Retry-After` (an Idempotency-Key retry then returns
whatever the first attempt really did)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from redis.exceptions import RedisError

from shared.errors import Problem

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

RETRY_AFTER_SECONDS = 2


def stock_unavailable(exc: RedisError) -> Problem:
    log.warning("redis unavailable in order: %r", exc)
    return Problem(
        503,
        "service-unavailable",
        "Service Unavailable",
        "stock cannot be checked right now; retry shortly",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def redis_answers_503(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap a use case called from HTTP so a Redis error becomes the 503 problem."""

    @wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except RedisError as exc:
            raise stock_unavailable(exc) from exc

    return wrapper


def counters_rebuilding() -> Problem:
    """Redis answers but lost the SKU's stock counters: nothing is sold until its owners rebuilt
    them (`shared/inventory.py`), which takes a second or two."""
    return Problem(
        503,
        "service-unavailable",
        "Service Unavailable",
        "stock is being recounted; retry shortly",
        headers={"Retry-After": "1"},
    )
