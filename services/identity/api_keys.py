"""Partner API keys (`/api/v1/me/api-keys`) and the gateway's internal lookup of one.

The secret is shown once, at creation. It is stored sealed (AES-GCM), not hashed: the partner
signs each request with HMAC-SHA256 keyed by the secret, and checking an HMAC needs the key
itself; whatever a verifier stores is as good as the secret, so a hash would protect nothing
(docs/identity.md explains the choice)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, delete, get, post
from litestar.di import Provide
from litestar.params import JSONBody

from services.identity.kit import IdentityController, Kit, _provide_kit, account_owner_only, field_error
from services.identity.store import API_KEYS, USERS
from services.identity.views import ApiKeyCreated, ApiKeyRequest, ApiKeyView
from shared.auth import Caller, require_roles
from shared.contracts.identity import ApiKeyCredentials, ApiKeyRevoked, revoked_api_key_key
from shared.errors import Problem, not_found
from shared.messaging.outbox import Tx

# The gateway caches a key for a few seconds; the revocation marker must outlive that cache.
REVOKED_MARKER_SECONDS = 24 * 3600


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class ApiKeysController(IdentityController):
    path = "/api/v1/me/api-keys"

    @post("/", status_code=201, summary="Create a partner API key (the secret is shown only now)")
    async def create(self, kit: Kit, caller: Caller, data: JSONBody[ApiKeyRequest]) -> ApiKeyCreated:
        account_owner_only(caller)
        name = data.name.strip()
        if not 1 <= len(name) <= 64:
            raise field_error("name", "must be 1 to 64 characters")
        if await kit.db[USERS].count_documents({"_id": caller.user_id}, limit=1) == 0:
            raise not_found("account")
        active = await kit.db[API_KEYS].count_documents({"user_id": caller.user_id, "revoked_at": None})
        if active >= kit.settings.api_keys_per_user:
            raise Problem(409, "too-many-api-keys", "Conflict", f"at most {kit.settings.api_keys_per_user} active keys")
        key_id = "ak_" + secrets.token_hex(12)
        secret = "sk_" + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        await kit.db[API_KEYS].insert_one(
            {
                "_id": key_id,
                "user_id": caller.user_id,
                "name": name,
                "secret": kit.box.seal(secret, context=f"api-key:{key_id}"),
                "created_at": now,
                "revoked_at": None,
            }
        )
        return ApiKeyCreated(key_id=key_id, secret=secret, name=name, created_at=now.isoformat())

    @get("/", summary="The account's API keys (never their secrets)")
    async def list_keys(self, kit: Kit, caller: Caller) -> list[ApiKeyView]:
        cursor = kit.db[API_KEYS].find({"user_id": caller.user_id}, {"secret": 0}).sort("created_at", 1)
        return [
            ApiKeyView(
                key_id=d["_id"],
                name=d["name"],
                created_at=d["created_at"].isoformat(),
                revoked=d.get("revoked_at") is not None,
                revoked_at=_iso(d.get("revoked_at")),
            )
            async for d in cursor
        ]

    @delete("/{key_id:str}", status_code=204, summary="Revoke an API key (effective at once at the gateway)")
    async def revoke(self, kit: Kit, caller: Caller, key_id: str) -> None:
        account_owner_only(caller)
        now = datetime.now(UTC)

        async def write(tx: Tx) -> None:
            revoked = await tx.db[API_KEYS].update_one(
                {"_id": key_id, "user_id": caller.user_id, "revoked_at": None},
                {"$set": {"revoked_at": now}},
                session=tx.session,
            )
            if revoked.modified_count:
                tx.emit(ApiKeyRevoked(user_id=caller.user_id, key_id=key_id))
                return
            # Revoking twice is fine (204, no second event); someone else's key is not found.
            if not await tx.db[API_KEYS].count_documents(
                {"_id": key_id, "user_id": caller.user_id}, session=tx.session
            ):
                raise not_found("API key")

        await kit.runtime.uow.run(write)
        await kit.runtime.redis.set(revoked_api_key_key(key_id), "1", ex=REVOKED_MARKER_SECONDS)


class InternalApiKeysController(Controller):
    """Only for the gateway (it calls with a token holding role `internal`)."""

    path = "/internal/api-keys"
    tags = ["internal"]
    dependencies = {"kit": Provide(_provide_kit, sync_to_thread=False)}
    include_in_schema = False

    @get("/{key_id:str}", guards=[require_roles("internal")])
    async def credentials(self, kit: Kit, key_id: str) -> ApiKeyCredentials:
        key: dict[str, Any] | None = await kit.db[API_KEYS].find_one({"_id": key_id, "revoked_at": None})
        if key is None:
            raise not_found("API key")
        user: dict[str, Any] | None = await kit.db[USERS].find_one({"_id": key["user_id"]}, {"roles": 1, "level": 1})
        if user is None:
            raise not_found("API key")
        return ApiKeyCredentials(
            key_id=key_id,
            user_id=key["user_id"],
            secret=kit.box.open(key["secret"], context=f"api-key:{key_id}"),
            roles=list(user.get("roles", ["buyer"])),
            level=user.get("level", "retail"),
        )
