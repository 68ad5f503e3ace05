"""Telling a waiting request that its order moved on.

POST /orders waits a few seconds for the wallet's answer, so the buyer learns at once whether
the order is paid or was declined (402). Whichever replica's consumer applies the status change
publishes `<order id> <status>` on one Redis channel after its transaction commits; every replica
listens and wakes its local waiters. A missed message only costs the waiter its timeout: it then
reads the order from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from redis.asyncio import Redis

log = logging.getLogger(__name__)

CHANNEL = "kameng:order-status"


class StatusWatch:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._waiters: dict[str, set[asyncio.Future[str]]] = defaultdict(set)
        self.listening = asyncio.Event()

    async def publish(self, order_id: str, status: str) -> None:
        await self.redis.publish(CHANNEL, f"{order_id} {status}")

    @contextlib.asynccontextmanager
    async def waiting(self, order_id: str):  # type: ignore[no-untyped-def]
        """Register interest before causing the change, so an early answer is not missed."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters[order_id].add(future)
        try:
            yield future
        finally:
            self._waiters[order_id].discard(future)
            if not self._waiters[order_id]:
                del self._waiters[order_id]

    def _deliver(self, order_id: str, status: str) -> None:
        for future in self._waiters.get(order_id, ()):
            if not future.done():
                future.set_result(status)

    async def listen(self) -> None:
        """Runs for the life of the process (a background task)."""
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self.listening.set()
                async for message in pubsub.listen():
                    data = message.get("data")
                    if isinstance(data, bytes):
                        order_id, _, status = data.decode().partition(" ")
                        self._deliver(order_id, status)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("order status channel lost (%r); resubscribing", exc)
                self.listening.clear()
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
