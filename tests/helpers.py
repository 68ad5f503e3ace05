"""Small helpers shared by integration and e2e tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from aiokafka import AIOKafkaProducer

from shared.auth import issue_access_token
from shared.config import DEV_JWT_SECRET
from shared.contracts.envelope import Envelope, encode_envelope, new_id
from shared.contracts.registry import Event, lookup
from shared.messaging.outbox import build_envelope

T = TypeVar("T")


def token_for(
    user_id: str | None = None,
    *,
    roles: Iterable[str] = ("buyer",),
    level: str = "retail",
    ttl_seconds: int = 4 * 3600,
    secret: str = DEV_JWT_SECRET,
) -> str:
    """An access token as identity would sign it, for the platform started by the tests. Valid for
    hours: modules mint their staff and buyer headers at import, and the whole suite runs longer
    than identity's 15-minute access tokens live."""
    return issue_access_token(secret, user_id=user_id or new_id(), roles=roles, level=level, ttl_seconds=ttl_seconds)


def auth(user_id: str | None = None, **kwargs: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user_id, **kwargs)}"}  # type: ignore[arg-type]


def wait_until(
    fn: Callable[[], T | None], *, timeout: float = 20.0, interval: float = 0.1, message: str = "condition"
) -> T:
    """Call `fn` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s (last: {value!r})")
        time.sleep(interval)


async def eventually(
    fn: Callable[[], Awaitable[T | None]], *, timeout: float = 30, interval: float = 0.15, message: str = "condition"
) -> T:
    """Await `fn` until it returns something truthy (the async twin of `wait_until`)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: T | None = None
    while asyncio.get_running_loop().time() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{message} not met within {timeout}s (last: {last!r})")


async def publish(producer: AIOKafkaProducer, payload: Event | Envelope, *, event_id: str | None = None) -> Envelope:
    """Put an event on the bus as its owning service's relay would (envelope, key, headers); an
    Envelope is sent again as it is: a redelivery with the same event id."""
    env = payload if isinstance(payload, Envelope) else build_envelope(payload, producer="test", event_id=event_id)
    topic = lookup(env.type, env.version)
    assert topic is not None, f"unknown event {env.type}"
    await producer.send_and_wait(
        topic.topic,
        encode_envelope(env),
        key=env.key.encode(),
        headers=[("event_id", env.event_id.encode()), ("event_type", env.type.encode())],
    )
    return env
