"""Password reset (忘记密码) by email or phone: a one-time code to the account's own email or phone
(the one given as `login`), then the code and a new password.

Asking answers the same (202) whether or not the login names an account, and whether or not a
limit held the code back, so the answer tells nobody which logins exist. The same code limits as
binding a contact apply (one a minute, `CONTACT_CODES_PER_HOUR` per address, a few tries). A
successful reset revokes every session of the account (refresh families, and their access tokens
at the gateway) and lifts a login lock."""

from __future__ import annotations

import logging

from services.identity.deps import IdentityDeps
from services.identity.domain import (
    field_error,
    input_problem,
    normalize_email,
    normalize_phone,
    password_problems,
    wrong_code,
)
from services.identity.usecases import codes
from shared.errors import Problem
from shared.messaging.outbox import Tx

log = logging.getLogger(__name__)

WRONG_CODE = "is wrong or has expired; ask for a new one"


def _code_id(user_id: str) -> str:
    return f"{user_id}:reset"


def _subject(user_id: str, login: str) -> str:
    return f"{user_id}:reset:{login}"


def _login(raw: str) -> str:
    """The login in its stored form; 422 unless it is an email or a mainland mobile number (an
    account's login is one of the two, so anything else names none: refused as the document says)."""
    login = normalize_email(raw) or normalize_phone(raw)
    if login is None:
        raise field_error("login", "an email or a mainland mobile number is needed")
    return login


async def request_reset(deps: IdentityDeps, raw_login: str) -> None:
    """Queue a reset code to `raw_login` if it names an account and no limit holds; else nothing."""
    login = _login(raw_login)
    user = await deps.store.user_for_reset(login)
    if user is None:
        return
    now = deps.clock()
    code_id = _code_id(user["_id"])
    if await codes.limit_problem(deps, code_id, login, now) is not None:
        return  # the same 202: a 429 here would say that the account exists
    new = codes.new_code(
        deps,
        code_id=code_id,
        subject=_subject(user["_id"], login),
        user_id=user["_id"],
        channel="email" if "@" in login else "sms",
        to=login,
        template="reset-password",
        now=now,
    )

    async def write(tx: Tx) -> None:
        await codes.save(deps, tx, new)

    await deps.uow.run(write)


async def confirm_reset(deps: IdentityDeps, raw_login: str, code: str, new_password: str) -> None:
    """Set the new password if the code is the pending one; every session of the account ends.
    An unknown login, no pending code and a wrong code answer alike (422 on `code`)."""
    login = _login(raw_login)
    if problems := password_problems(new_password, identifiers=(login,)):
        raise input_problem([{"field": "new_password", "message": p} for p in problems])
    user = await deps.store.user_for_reset(login)
    now = deps.clock()
    pending = await deps.store.contact_code(_code_id(user["_id"])) if user else None
    if user is None or pending is None or pending["expires_at"] <= now or pending["target"] != login:
        raise wrong_code(WRONG_CODE)
    code_id = _code_id(user["_id"])
    if pending["attempts"] >= deps.settings.contact_code_max_attempts:
        await deps.store.drop_contact_code(code_id)
        raise Problem(429, "too-many-attempts", "Too many attempts", "too many wrong codes; ask for a new one")
    if not codes.matches(deps, pending, _subject(user["_id"], login), code):
        await deps.store.count_code_attempt(code_id)
        raise wrong_code(WRONG_CODE)
    new_hash = await deps.passwords.hash(new_password)

    async def write(tx: Tx) -> None:
        # Consumed in the transaction that sets the password: a code resets once.
        if not await deps.store.consume_contact_code(tx, code_id, pending["code_hash"]):
            raise wrong_code(WRONG_CODE)
        await deps.store.set_password_hash(tx, user["_id"], new_hash)

    await deps.uow.run(write)
    await deps.denylist.deny_access_tokens(await deps.store.revoke_families_of_user(user["_id"], now))
    await deps.guard.succeeded(login)
    log.info("password of %s was reset; its sessions are revoked", user["_id"])
