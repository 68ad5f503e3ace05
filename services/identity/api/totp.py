"""TOTP two-factor authentication for the signed-in account (`/api/v1/me/totp`)."""

from __future__ import annotations

from litestar import Controller, delete, post
from litestar.params import JSONBody

from services.identity.deps import IdentityDeps
from services.identity.schemas import CodeRequest, TotpSetup, TotpState
from services.identity.usecases import totp
from shared.auth import Caller


class TotpController(Controller):
    path = "/api/v1/me"
    tags = ["identity"]

    @post("/totp", status_code=200, summary="Start turning on two-factor authentication: a new TOTP secret")
    async def totp_setup(self, deps: IdentityDeps, caller: Caller) -> TotpSetup:
        started = await totp.start_totp(deps, caller)
        return TotpSetup(secret=started.secret, otpauth_uri=started.otpauth_uri)

    @post("/totp/verify", status_code=200, summary="Confirm the TOTP secret with a code: turns two-factor on")
    async def totp_verify(self, deps: IdentityDeps, caller: Caller, data: JSONBody[CodeRequest]) -> TotpState:
        await totp.confirm_totp(deps, caller, data.code)
        return TotpState(totp_enabled=True)

    @delete("/totp", status_code=204, summary="Turn two-factor off (needs a valid code)")
    async def totp_disable(self, deps: IdentityDeps, caller: Caller, data: JSONBody[CodeRequest]) -> None:
        await totp.disable_totp(deps, caller, data.code)
