"""Partner API keys (`/api/v1/me/api-keys`) and the gateway's internal look-up of one."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.params import JSONBody

from services.identity.deps import IdentityDeps
from services.identity.schemas import ApiKeyCreated, ApiKeyRequest, ApiKeyView, api_key_view
from services.identity.usecases import keys
from shared.auth import INTERNAL, Caller
from shared.contracts.identity import ApiKeyCredentials


class ApiKeysController(Controller):
    path = "/api/v1/me/api-keys"
    tags = ["identity"]

    @post("/", status_code=201, summary="Create a partner API key (the secret is shown only now)")
    async def create(self, deps: IdentityDeps, caller: Caller, data: JSONBody[ApiKeyRequest]) -> ApiKeyCreated:
        key = await keys.create_api_key(deps, caller, data.name)
        return ApiKeyCreated(key_id=key.key_id, secret=key.secret, name=key.name, created_at=key.created_at.isoformat())

    @get("/", summary="The account's API keys (never their secrets)")
    async def list_keys(self, deps: IdentityDeps, caller: Caller) -> list[ApiKeyView]:
        return [api_key_view(key) for key in await keys.list_api_keys(deps, caller.user_id)]

    @delete("/{key_id:str}", status_code=204, summary="Revoke an API key (effective at once at the gateway)")
    async def revoke(self, deps: IdentityDeps, caller: Caller, key_id: str) -> None:
        await keys.revoke_api_key(deps, caller, key_id)


class InternalApiKeysController(Controller):
    """Only for the gateway (it calls with a token holding role `internal`)."""

    path = "/internal/api-keys"
    tags = ["internal"]
    include_in_schema = False

    @get("/{key_id:str}", guards=[INTERNAL])
    async def credentials(self, deps: IdentityDeps, key_id: str) -> ApiKeyCredentials:
        return await keys.api_key_credentials(deps, key_id)
