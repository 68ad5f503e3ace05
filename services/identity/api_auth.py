"""Register, log in, refresh, log out (`/api/v1/auth/...`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from litestar import Request, post
from litestar.params import Body, JSONBody
from pymongo.errors import DuplicateKeyError

from services.identity import tokens
from services.identity.domain import normalize_email, normalize_phone, password_problems, totp_step
from services.identity.kit import IdentityController, Kit, client_ip
from services.identity.store import USERS, login_filter
from services.identity.views import (
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    Registered,
    RegisterRequest,
    TokenPair,
)
from shared.auth import Caller, decode_access_token, issue_access_token
from shared.contracts.envelope import new_id
from shared.contracts.identity import UserRegistered, denied_access_token_key
from shared.errors import Problem, validation_problem
from shared.messaging.outbox import Tx

BAD_CREDENTIALS = "the login or the password is wrong"


def invalid_credentials(detail: str = BAD_CREDENTIALS, slug: str = "invalid-credentials") -> Problem:
    return Problem(401, slug, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="kameng"'})


def normalize_login(raw: str) -> str:
    if "@" in raw:
        return normalize_email(raw) or raw.strip().lower()
    return normalize_phone(raw) or raw.strip()


async def create_user(kit: Kit, *, email: str | None, phone: str | None, password: str, roles: list[str]) -> str:
    """Insert the account and its `identity.user-registered` event in one transaction."""
    user_id = new_id()
    password_hash = await kit.passwords.hash(password)
    doc: dict[str, Any] = {
        "_id": user_id,
        "password_hash": password_hash,
        "roles": roles,
        "level": "retail",
        "created_at": datetime.now(UTC),
        "version": 1,
    }
    if email:
        doc["email"] = email
    if phone:
        doc["phone"] = phone

    async def write(tx: Tx) -> None:
        await tx.db[USERS].insert_one(doc, session=tx.session)
        tx.emit(UserRegistered(user_id=user_id, email=email, phone=phone, level="retail", roles=roles))

    await kit.runtime.uow.run(write)
    return user_id


async def issue_pair(kit: Kit, user: dict[str, Any], family_id: str | None) -> TokenPair:
    secret = kit.settings.jwt_secret.get_secret_value()
    ttl = kit.settings.access_token_ttl_seconds
    access = issue_access_token(
        secret,
        user_id=user["_id"],
        roles=user.get("roles", ["buyer"]),
        level=user.get("level", "retail"),
        ttl_seconds=ttl,
    )
    refresh = tokens.new_refresh_token()
    await tokens.store_refresh_token(
        kit.db,
        token=refresh,
        user_id=user["_id"],
        family_id=family_id,
        access_jti=decode_access_token(secret, access).token_id,
        ttl_seconds=kit.settings.refresh_token_ttl_seconds,
    )
    return TokenPair(access_token=access, refresh_token=refresh, token_type="Bearer", expires_in=ttl)  # noqa: S106


class AuthController(IdentityController):
    path = "/api/v1/auth"

    @post("/register", status_code=201, summary="Create an account with an email or a mainland mobile number")
    async def register(self, kit: Kit, data: JSONBody[RegisterRequest]) -> Registered:
        errors: list[dict[str, str]] = []
        email = phone = None
        if data.email is None and data.phone is None:
            errors.append({"field": "email", "message": "an email or a phone number is needed"})
        if data.email is not None and (email := normalize_email(data.email)) is None:
            errors.append({"field": "email", "message": "is not a valid email address"})
        if data.phone is not None and (phone := normalize_phone(data.phone)) is None:
            errors.append({"field": "phone", "message": "is not a mainland China mobile number (1[3-9] + 9 digits)"})
        for problem in password_problems(data.password, identifiers=tuple(x for x in (email, phone) if x)):
            errors.append({"field": "password", "message": problem})
        if errors:
            raise validation_problem(errors)
        try:
            user_id = await create_user(kit, email=email, phone=phone, password=data.password, roles=["buyer"])
        except DuplicateKeyError as exc:
            raise Problem(409, "account-exists", "Conflict", "an account with this email or phone exists") from exc
        return Registered(user_id=user_id)

    @post("/login", status_code=200, summary="Sign in: a short-lived access token and a rotating refresh token")
    async def login(self, kit: Kit, request: Request[Any, Any, Any], data: JSONBody[LoginRequest]) -> TokenPair:
        login = normalize_login(data.login)
        ip = client_ip(request)
        await kit.guard.check(login, ip)
        user: dict[str, Any] | None = await kit.db[USERS].find_one(
            login_filter(login), {"password_hash": 1, "roles": 1, "level": 1, "totp": 1}
        )
        ok = await kit.passwords.verify(user["password_hash"] if user else None, data.password[:1024])
        if not ok or user is None:
            await kit.guard.failed(login, ip)
            raise invalid_credentials()
        totp = user.get("totp") or {}
        if totp.get("enabled"):
            if not data.totp_code:
                raise invalid_credentials("this account needs totp_code (two-factor authentication)", "totp-required")
            seed = kit.box.open(totp["secret"], context=f"totp:{user['_id']}")
            step = totp_step(seed, data.totp_code, now=time.time(), last_step=totp.get("last_step"))
            # The conditional update makes a code usable once even by two concurrent logins.
            if step is None or not await claim_totp_step(kit, user["_id"], step):
                await kit.guard.failed(login, ip)
                raise invalid_credentials("the two-factor code is wrong or was already used", "invalid-totp")
        await kit.guard.succeeded(login)
        if kit.passwords.needs_rehash(user["password_hash"]):
            new_hash = await kit.passwords.hash(data.password)
            await kit.db[USERS].update_one(
                {"_id": user["_id"], "password_hash": user["password_hash"]}, {"$set": {"password_hash": new_hash}}
            )
        return await issue_pair(kit, user, family_id=None)

    @post("/refresh", status_code=200, summary="Exchange a refresh token for a new pair (the old one is used up)")
    async def refresh(self, kit: Kit, data: JSONBody[RefreshRequest]) -> TokenPair:
        try:
            record = await tokens.use_refresh_token(
                kit.db, data.refresh_token, on_family_revoked=lambda jtis: deny_access_tokens(kit, jtis)
            )
        except tokens.RefreshRejected as exc:
            raise invalid_credentials(str(exc), "invalid-refresh-token") from exc
        user: dict[str, Any] | None = await kit.db[USERS].find_one({"_id": record["user_id"]}, {"roles": 1, "level": 1})
        if user is None:
            raise invalid_credentials("the account no longer exists", "invalid-refresh-token")
        return await issue_pair(kit, user, family_id=record["family_id"])

    @post("/logout", status_code=204, summary="Sign out: revokes the session's refresh tokens and this access token")
    async def logout(self, kit: Kit, caller: Caller, data: LogoutRequest | None = Body(default=None)) -> None:
        families: set[str] = set()
        family = await tokens.family_of_access_token(kit.db, caller.token_id)
        if family:
            families.add(family)
        if data is not None and data.refresh_token:
            found = await tokens.family_of_refresh_token(kit.db, data.refresh_token)
            if found and found[1] == caller.user_id:
                families.add(found[0])
        jtis = {caller.token_id}
        for family_id in families:
            jtis.update(await tokens.revoke_family(kit.db, family_id))
        await deny_access_tokens(kit, sorted(jtis))


async def deny_access_tokens(kit: Kit, jtis: list[str]) -> None:
    """List access tokens at the gateway until they would have expired anyway. The exact expiry
    of older ones is not stored, so each is listed for a full access-token life (plus leeway)."""
    if not jtis:
        return
    ttl = kit.settings.access_token_ttl_seconds + 10
    async with kit.runtime.redis.pipeline(transaction=False) as pipe:
        for jti in jtis:
            pipe.set(denied_access_token_key(jti), "1", ex=ttl)
        await pipe.execute()


async def claim_totp_step(kit: Kit, user_id: str, step: int) -> bool:
    result = await kit.db[USERS].update_one(
        {"_id": user_id, "$or": [{"totp.last_step": None}, {"totp.last_step": {"$lt": step}}]},
        {"$set": {"totp.last_step": step}},
    )
    return result.modified_count == 1
