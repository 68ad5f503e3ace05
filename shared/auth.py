"""Who is calling: access tokens (JWT, HS256) and the Litestar dependencies and guards built on them.

identity signs access tokens at login; the gateway mints one for a partner call it has verified
by HMAC (`via="api_key"`). Every service verifies the token itself with `JWT_SECRET`, so a forged
header never reaches a handler. Claims: `sub` (user id), `roles`, `level`, `via`, `kid` (API key
id, partner calls only), `jti`, `iat`, `exp`, `iss`, `typ` = "access".

In a controller:

    @get("/api/v1/orders/{order_id:str}")
    async def get_order(self, caller: Caller, order_id: str) -> OrderView: ...      # 401 if anonymous

    @get("/api/v1/catalog/products/{product_id:str}")
    async def product(self, viewer: Caller | None, product_id: str) -> ProductView: ... # anonymous ok

    @post("/api/v1/admin/products", guards=[ADMIN])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

import jwt
import msgspec
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from shared.contracts.envelope import new_id
from shared.errors import Problem

ISSUER = "kameng"
ALGORITHM = "HS256"
LEVELS = ("retail", "vip", "agent", "wholesale")
ROLES = ("buyer", "staff", "admin", "agent")


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    user_id: str
    roles: tuple[str, ...] = ("buyer",)
    level: str = "retail"
    via: Literal["token", "api_key"] = "token"
    api_key_id: str | None = None
    token_id: str = ""
    expires_at: int = 0

    def has_role(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)

    @property
    def is_staff(self) -> bool:
        return self.has_role("staff", "admin")


class InvalidToken(Exception):
    pass


def issue_access_token(
    secret: str,
    *,
    user_id: str,
    roles: Iterable[str],
    level: str,
    ttl_seconds: int,
    via: Literal["token", "api_key"] = "token",
    api_key_id: str | None = None,
    now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "typ": "access",
        "sub": user_id,
        "roles": sorted(set(roles)),
        "level": level,
        "via": via,
        "jti": new_id(),
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    if api_key_id is not None:
        claims["kid"] = api_key_id
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(secret: str, token: str, *, leeway_seconds: int = 5) -> Caller:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            leeway=leeway_seconds,
            options={"require": ["exp", "iat", "sub", "iss", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("the access token has expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("the access token is not valid") from exc
    if claims.get("typ") != "access":
        raise InvalidToken("not an access token")
    return Caller(
        user_id=str(claims["sub"]),
        roles=tuple(claims.get("roles") or ()),
        level=str(claims.get("level") or "retail"),
        via="api_key" if claims.get("via") == "api_key" else "token",
        api_key_id=claims.get("kid"),
        token_id=str(claims["jti"]),
        expires_at=int(claims["exp"]),
    )


class VerifiedTokens:
    """The access tokens this process has verified, so a caller's next request costs a dict
    look-up instead of an HMAC check and a JSON decode (Decision 24). A token is signed and never
    changes, so what it proved holds until it expires, which is checked on every hit. Whether it
    was revoked is not decided here: the gateway looks at the deny-list on every request."""

    def __init__(
        self, secret: str, *, max_entries: int = 20_000, leeway_seconds: int = 5, clock: Callable[[], float] = time.time
    ) -> None:
        self.secret = secret
        self.max_entries = max_entries
        self.leeway = leeway_seconds
        self.clock = clock
        self._known: dict[str, Caller] = {}

    def decode(self, token: str) -> Caller:
        """`decode_access_token`, remembered: InvalidToken for a bad, foreign or expired token."""
        known = self._known.get(token)
        if known is not None:
            if known.expires_at + self.leeway > self.clock():
                return known
            del self._known[token]
            raise InvalidToken("the access token has expired")
        caller = decode_access_token(self.secret, token, leeway_seconds=self.leeway)
        if len(self._known) >= self.max_entries:
            self._known.pop(next(iter(self._known)))  # the oldest: callers seen long ago
        self._known[token] = caller
        return caller


def unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="kameng"'})


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def caller_from(connection: ASGIConnection[Any, Any, Any, Any], tokens: VerifiedTokens) -> Caller | None:
    """The verified caller, None when anonymous; a bad or expired token is 401, never anonymous."""
    token = bearer_token(connection)
    if token is None:
        return None
    try:
        return tokens.decode(token)
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from exc


def require_roles(*roles: str) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]:
    """A guard: the caller must be authenticated and hold one of `roles` (403 otherwise)."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        caller = caller_from(connection, connection.app.state.tokens)
        if caller is None:
            raise unauthorized("sign in first")
        if not caller.has_role(*roles):
            raise Problem(403, "forbidden", "Forbidden", f"needs role {' or '.join(roles)}")

    return guard


# The guards, named once: a controller says `guards=[STAFF]`, never `require_roles(...)` itself.
ADMIN = require_roles("admin")
"""Admins only: catalog changes, roles and levels, imports."""
STAFF = require_roles("admin", "staff")
"""Staff or admin: the daily queues (manual delivery, tickets, top-up approvals, content)."""
AGENT = require_roles("agent")
"""Approved agents (代理): their sub-site, commissions and withdrawals."""
INTERNAL = require_roles("internal")
"""Service-to-service calls with an internal token (the gateway's API-key lookups)."""
