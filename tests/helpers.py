"""Small helpers shared by integration and e2e tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from shared.auth import issue_access_token
from shared.config import DEV_JWT_SECRET
from shared.contracts.envelope import new_id

T = TypeVar("T")


def token_for(
    user_id: str | None = None,
    *,
    roles: Iterable[str] = ("buyer",),
    level: str = "retail",
    ttl_seconds: int = 900,
    secret: str = DEV_JWT_SECRET,
) -> str:
    """An access token as identity would sign it, for the platform started by the tests."""
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
