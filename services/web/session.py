"""Browser sessions: an opaque random id in an HttpOnly cookie; the user's tokens stay server-side
in Redis. The access token is refreshed transparently shortly before it expires (or when the API
answers 401), under a per-session lock so two concurrent pages never spend the same refresh token
(identity revokes the whole family when a rotated refresh token is reused)."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis

from services.web.client import Api, ApiProblem

log = logging.getLogger(__name__)

_PREFIX = "web:session:"
_USER_PREFIX = "web:user-sessions:"


class SignInRequired(Exception):
    """The page needs a signed-in user (or the session has ended): go to the sign-in page."""


class PageForbidden(Exception):
    """The signed-in user lacks the role the page needs: a 403 page."""


class PageNotFound(Exception):
    """Nothing to show here (including someone else's order): a 404 page."""


@dataclass
class Session:
    sid: str
    access_token: str
    refresh_token: str
    access_expires_at: float
    user: dict[str, Any] = field(default_factory=dict)
    flash: str | None = None

    @property
    def user_id(self) -> str:
        return str(self.user.get("user_id", ""))

    @property
    def roles(self) -> list[str]:
        return list(self.user.get("roles", []))

    @property
    def is_staff(self) -> bool:
        return bool({"staff", "admin"} & set(self.roles))

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def display_name(self) -> str:
        return str(self.user.get("email") or self.user.get("phone") or self.user_id[:8])


class Sessions:
    def __init__(self, redis: Redis, api: Api, *, ttl_seconds: int, refresh_margin_seconds: int) -> None:
        self.redis = redis
        self.api = api
        self.ttl = ttl_seconds
        self.margin = refresh_margin_seconds

    async def create(self, tokens: dict[str, Any]) -> Session:
        """A new session after a successful login (a fresh id: never reuse one from before)."""
        user = await self.api.me(tokens["access_token"])
        session = Session(
            sid=secrets.token_urlsafe(32),
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            access_expires_at=time.time() + int(tokens.get("expires_in", 900)),
            user=user,
        )
        await self.save(session)
        # Every session of a user is listed, so "sign out everywhere" can end them all.
        members = _USER_PREFIX + session.user_id
        await self.redis.sadd(members, session.sid)  # type: ignore[misc]
        await self.redis.expire(members, self.ttl)
        return session

    async def all_of(self, user_id: str) -> list[Session]:
        """The user's sessions still alive (ids of ended ones are dropped from the list)."""
        members = _USER_PREFIX + user_id
        alive = []
        for raw in await self.redis.smembers(members):  # type: ignore[misc]
            sid = raw.decode() if isinstance(raw, bytes) else str(raw)
            found = await self.load(sid)
            if found is None:
                await self.redis.srem(members, sid)  # type: ignore[misc]
            else:
                alive.append(found)
        return alive

    async def load(self, sid: str | None) -> Session | None:
        if not sid or len(sid) > 100:
            return None
        raw = await self.redis.get(_PREFIX + sid)
        if raw is None:
            return None
        try:
            return Session(**json.loads(raw))
        except (TypeError, ValueError):
            return None

    async def save(self, session: Session) -> None:
        await self.redis.set(_PREFIX + session.sid, json.dumps(asdict(session)), ex=self.ttl)

    async def delete(self, sid: str) -> None:
        await self.redis.delete(_PREFIX + sid)

    async def token(self, session: Session) -> str:
        """A valid access token for the session, refreshed when it is about to expire."""
        if session.access_expires_at - self.margin > time.time():
            return session.access_token
        await self.refresh(session)
        return session.access_token

    async def refresh(self, session: Session) -> None:
        """Exchange the refresh token once, even with several pages of this session in flight:
        the first takes the lock and refreshes, the others wait and read its result."""
        lock = f"{_PREFIX}{session.sid}:refreshing"
        spent = session.refresh_token
        if await self.redis.set(lock, "1", nx=True, ex=10):
            try:
                current = await self.load(session.sid)
                if current is None:
                    raise SignInRequired
                if current.refresh_token != spent:  # someone refreshed just before us
                    _adopt(session, current)
                    return
                try:
                    tokens = await self.api.refresh(spent)
                except ApiProblem as exc:
                    if exc.status in (400, 401, 403, 422):
                        await self.delete(session.sid)
                        raise SignInRequired from exc
                    raise
                session.access_token = tokens["access_token"]
                session.refresh_token = tokens["refresh_token"]
                session.access_expires_at = time.time() + int(tokens.get("expires_in", 900))
                await self.save(session)
            finally:
                await self.redis.delete(lock)
            return
        for _ in range(50):
            await asyncio.sleep(0.1)
            current = await self.load(session.sid)
            if current is None:
                raise SignInRequired
            if current.refresh_token != spent:
                _adopt(session, current)
                return
        raise SignInRequired


def _adopt(session: Session, current: Session) -> None:
    session.access_token = current.access_token
    session.refresh_token = current.refresh_token
    session.access_expires_at = current.access_expires_at
