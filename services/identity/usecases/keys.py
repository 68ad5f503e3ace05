"""Partner API keys: create (the secret is shown once), list, revoke, and the gateway's look-up
of one key's credentials.

The secret is stored sealed (AES-GCM), not hashed: the partner signs each request with
HMAC-SHA256 keyed by the secret, and checking an HMAC needs the key itself; whatever a verifier
stores is as good as the secret, so a hash would protect nothing (docs/identity.md explains the
choice)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.identity.deps import IdentityDeps
from services.identity.domain import account_owner_only, field_error
from shared.auth import Caller
from shared.contracts.identity import ApiKeyCreated, ApiKeyCredentials, ApiKeyRevoked
from shared.errors import Problem, not_found
from shared.messaging.outbox import Tx


@dataclass(frozen=True)
class NewApiKey:
    key_id: str
    secret: str
    name: str
    created_at: datetime


async def create_api_key(deps: IdentityDeps, caller: Caller, name: str) -> NewApiKey:
    account_owner_only(caller)
    name = name.strip()
    if not 1 <= len(name) <= 64:
        raise field_error("name", "must be 1 to 64 characters")
    if not await deps.store.user_exists(caller.user_id):
        raise not_found("account")
    limit = deps.settings.api_keys_per_user
    if await deps.store.count_active_keys(caller.user_id) >= limit:
        raise Problem(409, "too-many-api-keys", "Conflict", f"at most {limit} active keys")
    key_id = "ak_" + secrets.token_hex(12)
    secret = "sk_" + secrets.token_urlsafe(32)
    now = deps.clock()
    doc = {
        "_id": key_id,
        "user_id": caller.user_id,
        "name": name,
        "secret": deps.box.seal(secret, context=f"api-key:{key_id}"),
        "created_at": now,
        "revoked_at": None,
    }

    async def write(tx: Tx) -> None:
        # The event lets support open the partner's feed topic (the first key makes a partner).
        await deps.store.add_api_key(tx, doc)
        tx.emit(ApiKeyCreated(user_id=caller.user_id, key_id=key_id))

    await deps.uow.run(write)
    return NewApiKey(key_id=key_id, secret=secret, name=name, created_at=now)


async def list_api_keys(deps: IdentityDeps, user_id: str) -> list[dict[str, Any]]:
    """The user's keys, oldest first, never their secrets."""
    return await deps.store.api_keys_of(user_id)


async def revoke_api_key(deps: IdentityDeps, caller: Caller, key_id: str) -> None:
    """Revoke the caller's key, at once at the gateway too. Revoking twice is fine (no second
    event); someone else's key is not found."""
    account_owner_only(caller)
    now = deps.clock()

    async def write(tx: Tx) -> None:
        if await deps.store.revoke_api_key(tx, key_id, caller.user_id, now):
            tx.emit(ApiKeyRevoked(user_id=caller.user_id, key_id=key_id))
            return
        if not await deps.store.api_key_exists(tx, key_id, caller.user_id):
            raise not_found("API key")

    await deps.uow.run(write)
    await deps.denylist.revoke_api_key(key_id)


async def api_key_credentials(deps: IdentityDeps, key_id: str) -> ApiKeyCredentials:
    """What the gateway needs to check a signed request: the secret, and the roles and level of
    the key's user. A revoked key, or one whose user is gone, is not found."""
    key = await deps.store.active_api_key(key_id)
    if key is None:
        raise not_found("API key")
    user = await deps.store.token_claims(key["user_id"])
    if user is None:
        raise not_found("API key")
    return ApiKeyCredentials(
        key_id=key_id,
        user_id=key["user_id"],
        secret=deps.box.open(key["secret"], context=f"api-key:{key_id}"),
        roles=list(user.get("roles", ["buyer"])),
        level=user.get("level", "retail"),
    )
