"""Who is calling, decided at the edge before anything is forwarded.

- `Authorization: Bearer <jwt>`: verified with JWT_SECRET (401 if forged or expired) and refused
  when identity has listed its `jti` at logout. When an admin changed the account's level or
  roles since the token was issued, the token is forwarded re-minted with the current claims.
- `X-Api-Key` + `X-Timestamp` + `X-Nonce` + `X-Signature`: a partner. The signature is checked
  with the key's secret, the timestamp must be fresh, the nonce unused (Redis SET NX); then the
  request goes on with a short token the gateway mints for the key's user (`via="api_key"`),
  replacing the partner headers, so services see one kind of caller.
- Neither: only public routes (services/gateway/public.py).

Per-IP and per-user rate limits are counted in the same Redis round trip as the other checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
import msgspec
from litestar import Request

from services.gateway import signing
from services.gateway.apikeys import ApiKeyDirectory
from services.gateway.domain import ClaimRequest, Command, ip_key, over_limit, user_key
from services.gateway.public import is_public
from services.gateway.settings import GatewaySettings
from services.gateway.store import Batches, hit, run_one, run_pipeline
from shared.auth import (
    ALGORITHM,
    Caller,
    InvalidToken,
    VerifiedTokens,
    bearer_token,
    issue_access_token,
    unauthorized,
)
from shared.contracts.identity import current_claims_key, denied_access_token_key, revoked_api_key_key
from shared.errors import Problem

PARTNER_HEADERS = ("x-api-key", "x-timestamp", "x-nonce", "x-signature")


@dataclass
class Admitted:
    caller: Caller | None
    authorization: str | None
    """The Authorization header to forward (the caller's own, or one minted for a partner)."""
    claimed: bool = False
    """The `claim` given to `admit` was taken in the edge's round trip (signed-in callers)."""
    read: list[Any] | None = None
    """The results of the `reads` given to `admit`, in order (None: they were not made)."""


def signature_refused(slug: str, detail: str) -> Problem:
    return Problem(401, slug, "Unauthorized", detail, headers={"WWW-Authenticate": 'Signature realm="kameng"'})


def current_claims(stored: Mapping[Any, Any] | Sequence[Any] | None) -> tuple[str, tuple[str, ...]] | None:
    """(level, roles) from identity's `current_claims_key` hash, None when it holds none. The
    hash as HGETALL's raw reply (field, value, field, value...) or as a mapping."""
    if not stored:
        return None
    pairs = stored.items() if isinstance(stored, Mapping) else zip(stored[::2], stored[1::2], strict=True)
    fields = {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in pairs}
    level, roles = fields.get("level"), fields.get("roles")
    if level is None or roles is None:
        return None
    as_text = [x.decode() if isinstance(x, bytes) else str(x) for x in (level, roles)]
    return as_text[0], tuple(sorted(r for r in as_text[1].split(",") if r))


def remint(secret: str, token: str, *, level: str, roles: tuple[str, ...]) -> str:
    """The (already verified) token with other level and roles; every other claim kept, so the
    jti still names the session for logout and the deny-list."""
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(level=level, roles=list(roles))
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


class Edge:
    def __init__(self, settings: GatewaySettings, link: Batches, keys: ApiKeyDirectory) -> None:
        self.settings = settings
        self.link = link
        self.keys = keys
        self.secret = settings.jwt_secret.get_secret_value()
        self.tokens = VerifiedTokens(self.secret)

    async def admit(
        self,
        request: Request[Any, Any, Any],
        relative: str,
        body: bytes,
        claim: ClaimRequest | None = None,
        reads: Callable[[Caller | None], tuple[Command, ...]] | None = None,
    ) -> Admitted:
        """Who is calling (or a 401/429 problem). A signed-in caller's `claim` rides in the same
        Redis round trip as the checks, and is undone when the request is refused. `reads`
        (given the caller the token names, None when anonymous) ride in it too, for every
        caller but a partner: their results are `Admitted.read`."""
        ip = request.client.host if request.client else "unknown"
        if request.headers.get("x-api-key"):
            return await self._partner(request, ip, body)
        token = bearer_token(request)
        if token is not None:
            try:
                caller = self.tokens.decode(token)
            except InvalidToken as exc:
                raise unauthorized(str(exc)) from exc
            extra: tuple[Command, ...] = (
                ("exists", denied_access_token_key(caller.token_id)),
                ("hgetall", current_claims_key(caller.user_id)),
            )
            if claim is not None:
                extra += (claim.take(caller.user_id),)
            wanted = reads(caller) if reads is not None else ()
            results, refused = await self._count(ip, caller.user_id, extra=extra + wanted)
            claimed = claim is not None and bool(results[2])
            if results[0]:
                refused = unauthorized("the access token was revoked (signed out)")
            if refused is not None:
                if claim is not None and claimed:
                    await run_one(self.link, "DEL", claim.redis_key(caller.user_id))
                raise refused
            admitted = self._with_current_claims(caller, token, results[1])
            admitted.claimed = claimed
            if reads is not None:
                admitted.read = results[len(extra) :]
            return admitted
        if not is_public(request.method, relative):
            raise unauthorized("sign in first: send Authorization: Bearer <access token> or sign with an API key")
        wanted = reads(None) if reads is not None else ()
        results, problem = await self._count(ip, None, extra=wanted)
        if problem is not None:
            raise problem
        return Admitted(None, None, read=results if reads is not None else None)

    def _with_current_claims(
        self, caller: Caller, token: str, fresh: Mapping[Any, Any] | Sequence[Any] | None
    ) -> Admitted:
        """The caller as identity knows them now: when an admin changed the account's level or
        roles after this token was issued, forward the same token (same jti, expiry, via) with
        the current claims, so the change holds from this request on (Decision 19)."""
        current = current_claims(fresh)
        if current is None or (caller.level, tuple(sorted(caller.roles))) == current:
            return Admitted(caller, f"Bearer {token}")
        level, roles = current
        return Admitted(
            msgspec.structs.replace(caller, level=level, roles=roles),
            f"Bearer {remint(self.secret, token, level=level, roles=roles)}",
        )

    async def _count(
        self, ip: str, user_id: str | None, *, extra: tuple[Command, ...] = ()
    ) -> tuple[list[Any], Problem | None]:
        """Count the request against the limits, running the `extra` Redis commands in the same
        round trip: their results (in order) and the limit's problem, if it is over."""
        window_ms = self.settings.rate_limit_window_seconds * 1000
        commands = [*extra, hit(ip_key(ip), window_ms)]
        if user_id is not None:
            commands.append(hit(user_key(user_id), window_ms))
        results = await run_pipeline(self.link, commands)
        limits = results[len(extra) :]
        problem = over_limit(limits[0], self.settings.rate_limit_per_ip, "from this address")
        if problem is None and user_id is not None:
            problem = over_limit(limits[1], self.settings.rate_limit_per_user, "for this account")
        return results[: len(extra)], problem

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
        fresh, revoked, changed, ip_hits, user_hits = await run_pipeline(
            self.link,
            [
                ("SET", nonce_key, "1", "NX", "EX", 2 * self.settings.partner_max_skew_seconds),
                ("EXISTS", revoked_api_key_key(key_id)),
                ("HGETALL", current_claims_key(key.user_id)),
                hit(ip_key(ip), window_ms),
                hit(user_key(key.user_id), window_ms),
            ],
        )
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
        # The key's cached claims may predate an admin's change: the change wins at once.
        level, roles = current_claims(changed) or (key.level, tuple(key.roles))
        token = issue_access_token(
            self.secret,
            user_id=key.user_id,
            roles=roles,
            level=level,
            ttl_seconds=self.settings.partner_token_ttl_seconds,
            via="api_key",
            api_key_id=key_id,
        )
        caller = Caller(user_id=key.user_id, roles=tuple(roles), level=level, via="api_key", api_key_id=key_id)
        return Admitted(caller, f"Bearer {token}")
