"""Who is calling, decided at the edge before anything is forwarded.

- `Authorization: Bearer <jwt>`: verified with JWT_SECRET (401 if forged or expired) and refused
  when identity has listed its `jti` at logout.
- `X-Api-Key` + `X-Timestamp` + `X-Nonce` + `X-Signature`: a partner. The signature is checked
  with the key's secret, the timestamp must be fresh, the nonce unused (Redis SET NX); then the
  request goes on with a short token the gateway mints for the key's user (`via="api_key"`),
  replacing the partner headers, so services see one kind of caller.
- Neither: only public routes (services/gateway/public.py).

Per-IP and per-user rate limits are counted in the same Redis round trip as the other checks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from litestar import Request
from redis.asyncio import Redis

from services.gateway import signing
from services.gateway.apikeys import ApiKeyDirectory
from services.gateway.public import is_public
from services.gateway.ratelimit import HIT, ip_key, over_limit, user_key
from services.gateway.settings import GatewaySettings
from shared.auth import Caller, InvalidToken, bearer_token, decode_access_token, issue_access_token, unauthorized
from shared.contracts.identity import denied_access_token_key, revoked_api_key_key
from shared.errors import Problem

PARTNER_HEADERS = ("x-api-key", "x-timestamp", "x-nonce", "x-signature")


@dataclass
class Admitted:
    caller: Caller | None
    authorization: str | None
    """The Authorization header to forward (the caller's own, or one minted for a partner)."""


def signature_refused(slug: str, detail: str) -> Problem:
    return Problem(401, slug, "Unauthorized", detail, headers={"WWW-Authenticate": 'Signature realm="kameng"'})


class Edge:
    def __init__(self, settings: GatewaySettings, redis: Redis, keys: ApiKeyDirectory) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.secret = settings.jwt_secret.get_secret_value()
        self._hit = redis.register_script(HIT)

    async def admit(self, request: Request[Any, Any, Any], relative: str, body: bytes) -> Admitted:
        ip = request.client.host if request.client else "unknown"
        if request.headers.get("x-api-key"):
            return await self._partner(request, ip, body)
        token = bearer_token(request)
        if token is not None:
            try:
                caller = decode_access_token(self.secret, token)
            except InvalidToken as exc:
                raise unauthorized(str(exc)) from exc
            denied, *_ = await self._checks(
                ip, caller.user_id, extra=("exists", denied_access_token_key(caller.token_id))
            )
            if denied:
                raise unauthorized("the access token was revoked (signed out)")
            return Admitted(caller, request.headers.get("authorization"))
        if not is_public(request.method, relative):
            raise unauthorized("sign in first: send Authorization: Bearer <access token> or sign with an API key")
        await self._checks(ip, None)
        return Admitted(None, None)

    async def _checks(self, ip: str, user_id: str | None, *, extra: tuple[str, ...] | None = None) -> list[Any]:
        """Count the request against the limits; run one `extra` Redis command in the same round
        trip and return its result (first) and the limit results."""
        window_ms = self.settings.rate_limit_window_seconds * 1000
        async with self.redis.pipeline(transaction=False) as pipe:
            if extra:
                pipe.execute_command(*extra)
            await self._hit(keys=[ip_key(ip)], args=[window_ms], client=pipe)
            if user_id is not None:
                await self._hit(keys=[user_key(user_id)], args=[window_ms], client=pipe)
            results: list[Any] = await pipe.execute()
        limits = results[1:] if extra else results
        problem = over_limit(limits[0], self.settings.rate_limit_per_ip, "from this address")
        if problem is None and user_id is not None:
            problem = over_limit(limits[1], self.settings.rate_limit_per_user, "for this account")
        if problem is not None:
            raise problem
        return results

    async def _partner(self, request: Request[Any, Any, Any], ip: str, body: bytes) -> Admitted:
        headers = {h: request.headers.get(h, "").strip() for h in PARTNER_HEADERS}
        missing = [h for h in PARTNER_HEADERS if not headers[h]]
        if missing:
            raise signature_refused("invalid-signature", f"a signed request needs {', '.join(missing)}")
        stale = signing.timestamp_problem(
            headers["x-timestamp"], now=time.time(), max_skew_seconds=self.settings.partner_max_skew_seconds
        )
        if stale:
            raise signature_refused("stale-timestamp", stale)
        if bad_nonce := signing.nonce_problem(headers["x-nonce"]):
            raise signature_refused("invalid-signature", bad_nonce)
        key_id = headers["x-api-key"]
        key = await self.keys.get(key_id)
        # The path as the partner sent it (percent-encoded) and as decoded, each with and without
        # the query string: whichever form the partner signed, the same request verifies.
        raw = request.scope.get("raw_path")
        forms = {request.url.path, raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path}
        query = request.url.query
        paths = sorted(forms | ({f"{p}?{query}" for p in forms} if query else set()))
        if key is None or not signing.signature_matches(
            key.secret,
            headers["x-signature"],
            method=request.method,
            paths=paths,
            timestamp=headers["x-timestamp"],
            nonce=headers["x-nonce"],
            body=body,
        ):
            # One answer for an unknown key and a wrong signature: key ids cannot be probed.
            raise signature_refused("invalid-signature", "the signature does not match (see api.md)")
        # The nonce is remembered for twice the allowed skew, so within the window in which its
        # timestamp is acceptable it can never be used again.
        nonce_key = f"nonce:{key_id}:{headers['x-nonce']}"
        window_ms = self.settings.rate_limit_window_seconds * 1000
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(nonce_key, "1", nx=True, ex=2 * self.settings.partner_max_skew_seconds)
            pipe.exists(revoked_api_key_key(key_id))
            await self._hit(keys=[ip_key(ip)], args=[window_ms], client=pipe)
            await self._hit(keys=[user_key(key.user_id)], args=[window_ms], client=pipe)
            fresh, revoked, ip_hits, user_hits = await pipe.execute()
        if revoked:
            self.keys.forget(key_id)
            raise signature_refused("invalid-signature", "the signature does not match (see api.md)")
        if not fresh:
            raise signature_refused("replayed-nonce", "this X-Nonce was already used")
        problem = over_limit(ip_hits, self.settings.rate_limit_per_ip, "from this address") or over_limit(
            user_hits, self.settings.rate_limit_per_user, "for this account"
        )
        if problem is not None:
            raise problem
        token = issue_access_token(
            self.secret,
            user_id=key.user_id,
            roles=key.roles,
            level=key.level,
            ttl_seconds=self.settings.partner_token_ttl_seconds,
            via="api_key",
            api_key_id=key_id,
        )
        caller = Caller(user_id=key.user_id, roles=tuple(key.roles), level=key.level, via="api_key", api_key_id=key_id)
        return Admitted(caller, f"Bearer {token}")
