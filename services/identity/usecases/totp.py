"""Two-factor authentication (TOTP) for the signed-in account: set up a secret, confirm it with a
code, turn it off with a code. Every accepted code's time step is recorded, so a code seen once
cannot be replayed."""

from __future__ import annotations

from dataclasses import dataclass

import pyotp

from services.identity.deps import IdentityDeps
from services.identity.domain import account_owner_only, field_error, totp_step, wrong_code
from services.identity.usecases.me import account
from shared.auth import Caller
from shared.errors import Problem, not_found


@dataclass(frozen=True)
class TotpSecret:
    secret: str
    otpauth_uri: str


def _already_enabled() -> Problem:
    return Problem(409, "totp-already-enabled", "Conflict", "two-factor authentication is already on")


async def start_totp(deps: IdentityDeps, caller: Caller) -> TotpSecret:
    """A new secret, kept sealed as pending until a code confirms it."""
    account_owner_only(caller)
    user = await account(deps, caller.user_id)
    if (user.get("totp") or {}).get("enabled"):
        raise _already_enabled()
    seed = pyotp.random_base32()
    await deps.store.set_totp_pending(caller.user_id, deps.box.seal(seed, context=f"totp:{caller.user_id}"))
    label = user.get("email") or user.get("phone") or caller.user_id
    uri = pyotp.TOTP(seed).provisioning_uri(name=label, issuer_name=deps.settings.totp_issuer)
    return TotpSecret(secret=seed, otpauth_uri=uri)


async def confirm_totp(deps: IdentityDeps, caller: Caller, code: str) -> None:
    """Turn two-factor on with a current code of the pending secret."""
    account_owner_only(caller)
    user = await deps.store.totp_state(caller.user_id)
    if user is None:
        raise not_found("account")
    if (user.get("totp") or {}).get("enabled"):
        raise _already_enabled()
    pending = user.get("totp_pending")
    if not pending:
        raise Problem(409, "totp-not-started", "Conflict", "call POST /api/v1/me/totp first")
    seed = deps.box.open(pending, context=f"totp:{caller.user_id}")
    step = totp_step(seed, code, now=deps.clock().timestamp(), last_step=None)
    if step is None:
        raise field_error("code", "is not the current code of this secret")
    if not await deps.store.enable_totp(caller.user_id, pending, step):
        raise Problem(409, "totp-changed", "Conflict", "the pending secret changed; start again")


async def disable_totp(deps: IdentityDeps, caller: Caller, code: str) -> None:
    """Turn two-factor off; needs a valid code not used before."""
    account_owner_only(caller)
    user = await deps.store.totp_state(caller.user_id)
    if user is None:
        raise not_found("account")
    totp = user.get("totp") or {}
    if not totp.get("enabled"):
        raise Problem(409, "totp-not-enabled", "Conflict", "two-factor authentication is off")
    seed = deps.box.open(totp["secret"], context=f"totp:{caller.user_id}")
    step = totp_step(seed, code, now=deps.clock().timestamp(), last_step=totp.get("last_step"))
    if step is None or not await deps.store.claim_totp_step(caller.user_id, step):
        raise wrong_code("is wrong or was already used")
    await deps.store.disable_totp(caller.user_id)
