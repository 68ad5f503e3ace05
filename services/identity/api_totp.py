"""TOTP two-factor authentication for the signed-in account (`/api/v1/me/totp`)."""

from __future__ import annotations

import time
from typing import Any

import pyotp
from litestar import delete, post
from litestar.params import JSONBody

from services.identity.api_auth import claim_totp_step
from services.identity.api_me import load_me
from services.identity.domain import totp_step
from services.identity.kit import IdentityController, Kit, account_owner_only, field_error
from services.identity.store import USERS
from services.identity.views import CodeRequest, TotpSetup, TotpState
from shared.auth import Caller
from shared.errors import Problem, not_found


class TotpController(IdentityController):
    path = "/api/v1/me"

    @post("/totp", status_code=200, summary="Start turning on two-factor authentication: a new TOTP secret")
    async def totp_setup(self, kit: Kit, caller: Caller) -> TotpSetup:
        account_owner_only(caller)
        user = await load_me(kit, caller)
        if (user.get("totp") or {}).get("enabled"):
            raise Problem(409, "totp-already-enabled", "Conflict", "two-factor authentication is already on")
        seed = pyotp.random_base32()
        await kit.db[USERS].update_one(
            {"_id": caller.user_id}, {"$set": {"totp_pending": kit.box.seal(seed, context=f"totp:{caller.user_id}")}}
        )
        label = user.get("email") or user.get("phone") or caller.user_id
        uri = pyotp.TOTP(seed).provisioning_uri(name=label, issuer_name=kit.settings.totp_issuer)
        return TotpSetup(secret=seed, otpauth_uri=uri)

    @post("/totp/verify", status_code=200, summary="Confirm the TOTP secret with a code: turns two-factor on")
    async def totp_verify(self, kit: Kit, caller: Caller, data: JSONBody[CodeRequest]) -> TotpState:
        account_owner_only(caller)
        user: dict[str, Any] | None = await kit.db[USERS].find_one(
            {"_id": caller.user_id}, {"totp": 1, "totp_pending": 1}
        )
        if user is None:
            raise not_found("account")
        if (user.get("totp") or {}).get("enabled"):
            raise Problem(409, "totp-already-enabled", "Conflict", "two-factor authentication is already on")
        pending = user.get("totp_pending")
        if not pending:
            raise Problem(409, "totp-not-started", "Conflict", "call POST /api/v1/me/totp first")
        seed = kit.box.open(pending, context=f"totp:{caller.user_id}")
        step = totp_step(seed, data.code, now=time.time(), last_step=None)
        if step is None:
            raise field_error("code", "is not the current code of this secret")
        result = await kit.db[USERS].update_one(
            {"_id": caller.user_id, "totp_pending": pending},
            {"$set": {"totp": {"enabled": True, "secret": pending, "last_step": step}}, "$unset": {"totp_pending": ""}},
        )
        if not result.modified_count:
            raise Problem(409, "totp-changed", "Conflict", "the pending secret changed; start again")
        return TotpState(totp_enabled=True)

    @delete("/totp", status_code=204, summary="Turn two-factor off (needs a valid code)")
    async def totp_disable(self, kit: Kit, caller: Caller, data: JSONBody[CodeRequest]) -> None:
        account_owner_only(caller)
        user: dict[str, Any] | None = await kit.db[USERS].find_one({"_id": caller.user_id}, {"totp": 1})
        if user is None:
            raise not_found("account")
        totp = user.get("totp") or {}
        if not totp.get("enabled"):
            raise Problem(409, "totp-not-enabled", "Conflict", "two-factor authentication is off")
        seed = kit.box.open(totp["secret"], context=f"totp:{caller.user_id}")
        step = totp_step(seed, data.code, now=time.time(), last_step=totp.get("last_step"))
        if step is None or not await claim_totp_step(kit, caller.user_id, step):
            raise field_error("code", "is wrong or was already used")
        await kit.db[USERS].update_one({"_id": caller.user_id}, {"$unset": {"totp": ""}})
