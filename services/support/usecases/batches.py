"""Working off a claimed batch (emails, webhook deliveries): a few sends at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def lease_end(now: datetime, send_timeout_seconds: float) -> datetime:
    """Until when a claimed item is ours: past two send timeouts, so a slow send is not
    claimed again by another replica while it still runs."""
    return now + timedelta(seconds=send_timeout_seconds * 2 + 5)


async def each_bounded(items: list[T], send: Callable[[T], Awaitable[R]], *, concurrency: int) -> list[R]:
    """`send(item)` for every item, at most `concurrency` at once; the results in item order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item: T) -> R:
        async with gate:
            return await send(item)

    return list(await asyncio.gather(*(one(i) for i in items)))
