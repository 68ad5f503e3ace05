"""Accounts and sessions: register, log in (lockout, TOTP), rotate refresh tokens (a reused one
revokes its family), log out.

Refresh tokens are opaque (256 random bits); only their SHA-256 is stored. Every login starts a
family; each refresh marks the presented token used and issues the next one in the same family.
Presenting a used token means it was copied, so the whole family is revoked: the thief and the
victim both have to sign in again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.identity.deps import IdentityDeps
from services.identity.domain import (
    input_problem,
    new_refresh_token,
    normalize_email,
    normalize_login,
    normalize_phone,
    password_problems,
    token_hash,
    totp_step,
)
from shared.auth import Caller, decode_access_token, issue_access_token
from shared.contracts.envelope import new_id
from shared.contracts.identity import UserRegistered
from shared.errors import Problem
from shared.messaging.outbox import Tx

BAD_CREDENTIALS = "the login or the password is wrong"


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int


def invalid_credentials(detail: str = BAD_CREDENTIALS, slug: str = "invalid-credentials") -> Problem:
    return Problem(401, slug, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="kameng"'})


async def register(
    deps: IdentityDeps, *, email: str | None, phone: str | None, password: str, site: str | None = None
) -> str:
    """A new buyer account; 422 with every problem of the input, 409 when the email or phone
    belongs to an account. Signed up on a sub-site (`site`), the buyer belongs to it."""
    errors: list[dict[str, str]] = []
    email_ok = phone_ok = None
    if email is None and phone is None:
        errors.append({"field": "email", "message": "an email or a phone number is needed"})
    if email is not None and (email_ok := normalize_email(email)) is None:
        errors.append({"field": "email", "message": "is not a valid email address"})
    if phone is not None and (phone_ok := normalize_phone(phone)) is None:
        errors.append({"field": "phone", "message": "is not a mainland China mobile number (1[3-9] + 9 digits)"})
    for problem in password_problems(password, identifiers=tuple(x for x in (email_ok, phone_ok) if x)):
        errors.append({"field": "password", "message": problem})
    if errors:
        raise input_problem(errors)
    try:
        return await create_user(deps, email=email_ok, phone=phone_ok, password=password, roles=["buyer"], site=site)
    except DuplicateKeyError as exc:
        raise Problem(409, "account-exists", "Conflict", "an account with this email or phone exists") from exc


async def create_user(
    deps: IdentityDeps,
    *,
    email: str | None,
    phone: str | None,
    password: str,
    roles: list[str],
    site: str | None = None,
) -> str:
    """Insert the account and its `identity.user-registered` event in one transaction; raises
    DuplicateKeyError when the email or phone is taken (the unique indexes decide under
    concurrency)."""
    user_id = new_id()
    password_hash = await deps.passwords.hash(password)
    doc: dict[str, Any] = {
        "_id": user_id,
        "password_hash": password_hash,
        "roles": roles,
        "level": "retail",
        "created_at": deps.clock(),
        "version": 1,
    }
    if email:
        doc["email"] = email
    if phone:
        doc["phone"] = phone
    if site:
        doc["site"] = site

    async def write(tx: Tx) -> None:
        await deps.store.add_user(tx, doc)
        tx.emit(UserRegistered(user_id=user_id, email=email, phone=phone, level="retail", roles=roles, site=site))

    await deps.uow.run(write)
    return user_id


async def login(deps: IdentityDeps, *, login: str, password: str, totp_code: str | None, ip: str) -> Tokens:
    """A new session. An unknown login and a wrong password fail alike (same answer, and one
    argon2 verification either way); failures count towards a lock of the account and of the
    address, and a lock refuses even the right password."""
    login = normalize_login(login)
    await deps.guard.check(login, ip)
    user = await deps.store.user_for_login(login)
    ok = await deps.passwords.verify(user["password_hash"] if user else None, password[:1024])
    if not ok or user is None:
        await deps.guard.failed(login, ip)
        raise invalid_credentials()
    totp = user.get("totp") or {}
    if totp.get("enabled"):
        if not totp_code:
            raise invalid_credentials("this account needs totp_code (two-factor authentication)", "totp-required")
        seed = deps.box.open(totp["secret"], context=f"totp:{user['_id']}")
        step = totp_step(seed, totp_code, now=deps.clock().timestamp(), last_step=totp.get("last_step"))
        # The conditional update makes a code usable once even by two concurrent logins.
        if step is None or not await deps.store.claim_totp_step(user["_id"], step):
            await deps.guard.failed(login, ip)
            raise invalid_credentials("the two-factor code is wrong or was already used", "invalid-totp")
    await deps.guard.succeeded(login)
    if deps.passwords.needs_rehash(user["password_hash"]):
        new_hash = await deps.passwords.hash(password)
        await deps.store.replace_password_hash(user["_id"], user["password_hash"], new_hash)
    return await _issue(deps, user, family_id=None)


async def refresh(deps: IdentityDeps, refresh_token: str) -> Tokens:
    """The next pair of the token's family, with the account's current roles and level. A token
    presented a second time revokes its family and every access token issued in it."""
    now = deps.clock()
    digest = token_hash(refresh_token)
    record = await deps.store.use_refresh_token(digest, now)
    if record is None:
        known = await deps.store.refresh_token(digest)
        if known is None:
            raise invalid_credentials("the refresh token is not valid", "invalid-refresh-token")
        if known.get("used_at") is not None:
            await deps.denylist.deny_access_tokens(await deps.store.revoke_family(known["family_id"], now))
            raise invalid_credentials(
                "the refresh token was already used; every session of it is revoked", "invalid-refresh-token"
            )
        raise invalid_credentials("the refresh token has expired or was revoked", "invalid-refresh-token")
    user = await deps.store.token_claims(record["user_id"])
    if user is None:
        raise invalid_credentials("the account no longer exists", "invalid-refresh-token")
    return await _issue(deps, user, family_id=record["family_id"])


async def logout(deps: IdentityDeps, caller: Caller, refresh_token: str | None) -> None:
    """End the session of this access token and, if given, of the caller's refresh token: their
    families are revoked and the access tokens issued in them denied at the gateway."""
    families: set[str] = set()
    family = await deps.store.family_of_access_token(caller.token_id)
    if family:
        families.add(family)
    if refresh_token:
        found = await deps.store.refresh_token(token_hash(refresh_token))
        if found and found["user_id"] == caller.user_id:
            families.add(found["family_id"])
    jtis = {caller.token_id}
    now = deps.clock()
    for family_id in families:
        jtis.update(await deps.store.revoke_family(family_id, now))
    await deps.denylist.deny_access_tokens(sorted(jtis))


async def _issue(deps: IdentityDeps, user: dict[str, Any], family_id: str | None) -> Tokens:
    """An access token and a refresh token in `family_id` (a new family when None); the refresh
    record keeps the access token's `jti` so ending the session can deny it."""
    secret = deps.settings.jwt_secret.get_secret_value()
    ttl = deps.settings.access_token_ttl_seconds
    access = issue_access_token(
        secret,
        user_id=user["_id"],
        roles=user.get("roles", ["buyer"]),
        level=user.get("level", "retail"),
        ttl_seconds=ttl,
    )
    refresh_token = new_refresh_token()
    now = deps.clock()
    await deps.store.add_refresh_token(
        {
            "_id": token_hash(refresh_token),
            "family_id": family_id or new_id(),
            "user_id": user["_id"],
            "access_jti": decode_access_token(secret, access).token_id,
            "created_at": now,
            "expires_at": now + timedelta(seconds=deps.settings.refresh_token_ttl_seconds),
            "used_at": None,
            "revoked_at": None,
        }
    )
    return Tokens(access_token=access, refresh_token=refresh_token, expires_in=ttl)
