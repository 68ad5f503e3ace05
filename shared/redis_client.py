"""Redis client factory. Redis holds fast, rebuildable state only (stock counters, holds, rate
limits, idempotency keys): MongoDB is the truth, and Redis may be flushed at any time."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


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


class CommandLink:
    """Batches of commands, each sent in one round trip on a connection of the link's own: the
    gateway's per-request checks (rate limits, token revocation, facts of a kept answer).

    redis-py's pool checkout and Pipeline cost about twice the client CPU of the round trip
    itself (measured: 67 against 30 µs per three-command batch); at the edge that is paid on
    every request, so this keeps idle connections in a list and writes the packed batch
    directly. `send` returns every reply in order, an error reply (NOSCRIPT, WRONGTYPE) in place
    of its result, as `pipeline.execute(raise_on_error=False)` does.

    A connection Redis closed (it restarted, or dropped it idle) fails the batch once; the batch
    is then sent again on a fresh connection, like the pooled client's retry (`connect`). A
    timeout is not retried, so a hung Redis still answers within `timeout`.

    The timeout is one deadline per round trip, not redis-py's per command: its connections
    arm a timer for each reply read and wrap each write in `wait_for`, which cost about a tenth
    of the gateway's CPU on a request that made two round trips (docs/benchmarks.md)."""

    def __init__(self, url: str, *, timeout: float = 5.0, max_connections: int = 64) -> None:
        template = BlockingConnectionPool.from_url(url, socket_timeout=None, socket_connect_timeout=timeout)
        self._connection_class = template.connection_class
        self._kwargs = {**template.connection_kwargs, "health_check_interval": 0}
        self._idle: list[AbstractConnection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._timeout = timeout

    async def send(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        if self._slots.locked():  # every connection busy: wait, but not forever
            try:
                async with asyncio.timeout(self._timeout):
                    await self._slots.acquire()
            except TimeoutError as exc:
                raise RedisConnectionError("no Redis connection free in time") from exc
        else:
            await self._slots.acquire()  # free: returns at once
        try:
            connection = self._idle.pop() if self._idle else self._connection_class(**self._kwargs)
            try:
                replies = await self._round_trip(connection, commands)
            except RedisConnectionError:
                await connection.disconnect(nowait=True)
                connection = self._connection_class(**self._kwargs)
                try:
                    replies = await self._round_trip(connection, commands)
                except BaseException:
                    await connection.disconnect(nowait=True)
                    raise
            except BaseException:
                # A timeout or a cancelled request: replies may still be on their way, so this
                # connection can never be used again.
                await connection.disconnect(nowait=True)
                raise
            self._idle.append(connection)
            return replies
        finally:
            self._slots.release()

    async def _round_trip(self, connection: AbstractConnection, commands: Sequence[Sequence[Any]]) -> list[Any]:
        try:
            async with asyncio.timeout(self._timeout):
                if not connection.is_connected:
                    await connection.connect()  # type: ignore[no-untyped-call]
                await connection.send_packed_command(connection.pack_commands(commands), check_health=False)
                replies: list[Any] = []
                for _ in commands:
                    try:
                        replies.append(await connection.read_response())
                    except ResponseError as error:
                        replies.append(error)
                return replies
        except TimeoutError as exc:
            raise RedisTimeoutError(f"Redis did not answer within {self._timeout} s") from exc

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.disconnect()
