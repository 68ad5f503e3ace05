"""The signed-in user's own account (`/api/v1/me/...`): profile, real-name verification, TOTP
two-factor, binding an email or phone with a one-time code."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pyotp
from litestar import delete, get, post
from litestar.params import JSONBody
from pymongo.errors import DuplicateKeyError

from services.identity.api_auth import claim_totp_step
from services.identity.domain import (
    id_number_problem,
    mask_email,
    mask_id_number,
    mask_phone,
    normalize_email,
    normalize_id_number,
    normalize_phone,
    real_name_problem,
    totp_step,
)
from services.identity.kit import IdentityController, Kit, account_owner_only, field_error
from services.identity.store import CONTACT_CODES, NOTIFICATIONS, USERS, find_user
from services.identity.views import (
    CodeRequest,
    CodeSent,
    EmailRequest,
    Me,
    PhoneRequest,
    RealNameRequest,
    RealNameResult,
    TotpSetup,
    TotpState,
)
from shared.auth import Caller
from shared.contracts.envelope import new_id
from shared.contracts.identity import ContactChanged, UserVerified
from shared.errors import Problem, not_found, validation_problem
from shared.messaging.outbox import Tx


def me_view(user: dict[str, Any]) -> Me:
    real_name = user.get("real_name") or {}
    return Me(
        user_id=user["_id"],
        email=user.get("email"),
        phone=user.get("phone"),
        level=user.get("level", "retail"),
        roles=list(user.get("roles", [])),
        real_name_verified=bool(real_name.get("verified_at")),
        totp_enabled=bool((user.get("totp") or {}).get("enabled")),
        id_number_masked=real_name.get("masked"),
    )


async def load_me(kit: Kit, caller: Caller) -> dict[str, Any]:
    user: dict[str, Any] | None = await find_user(kit.db, caller.user_id)
    if user is None:
        raise not_found("account")
    return user


class MeController(IdentityController):
    path = "/api/v1/me"

    @get("/", summary="The signed-in account")
    async def me(self, kit: Kit, caller: Caller) -> Me:
        return me_view(await load_me(kit, caller))

    @post("/real-name", status_code=200, summary="Real-name verification (实名认证): name + resident ID number")
    async def real_name(self, kit: Kit, caller: Caller, data: JSONBody[RealNameRequest]) -> RealNameResult:
        account_owner_only(caller)
        errors = []
        if problem := real_name_problem(data.name):
            errors.append({"field": "name", "message": problem})
        if problem := id_number_problem(data.id_number, today=datetime.now(UTC).date()):
            errors.append({"field": "id_number", "message": problem})
        if errors:
            raise validation_problem(errors)
        number = normalize_id_number(data.id_number)
        user_id = caller.user_id
        now = datetime.now(UTC)
        record = {
            "name": kit.box.seal(data.name.strip(), context=f"real-name:{user_id}"),
            "id_number": kit.box.seal(number, context=f"id-number:{user_id}"),
            "id_hash": kit.box.lookup_hash(number, purpose="id-number"),
            "masked": mask_id_number(number),
            "verified_at": now,
        }

        async def write(tx: Tx) -> int:
            result = await tx.db[USERS].update_one(
                {"_id": user_id, "real_name": {"$exists": False}}, {"$set": {"real_name": record}}, session=tx.session
            )
            if result.matched_count:
                tx.emit(UserVerified(user_id=user_id, verified_at=now))
            return int(result.matched_count)

        try:
            matched = await kit.runtime.uow.run(write)
        except DuplicateKeyError as exc:
            raise Problem(
                409, "id-number-taken", "Conflict", "this ID number already verified another account"
            ) from exc
        if not matched:
            await load_me(kit, caller)  # 404 when the account does not exist
            raise Problem(409, "already-verified", "Conflict", "this account is already verified")
        return RealNameResult(real_name_verified=True, id_number_masked=record["masked"])  # type: ignore[arg-type]

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

    @post("/email", status_code=202, summary="Bind or change the email: sends a one-time code to it")
    async def start_email(self, kit: Kit, caller: Caller, data: JSONBody[EmailRequest]) -> CodeSent:
        email = normalize_email(data.email)
        if email is None:
            raise field_error("email", "is not a valid email address")
        return await send_code(kit, caller, "email", email)

    @post("/email/confirm", status_code=200, summary="Confirm the new email with its code")
    async def confirm_email(self, kit: Kit, caller: Caller, data: JSONBody[CodeRequest]) -> Me:
        return await confirm_code(kit, caller, "email", data.code)

    @post("/phone", status_code=202, summary="Bind or change the mobile number: sends a one-time code by SMS")
    async def start_phone(self, kit: Kit, caller: Caller, data: JSONBody[PhoneRequest]) -> CodeSent:
        phone = normalize_phone(data.phone)
        if phone is None:
            raise field_error("phone", "is not a mainland China mobile number (1[3-9] + 9 digits)")
        return await send_code(kit, caller, "phone", phone)

    @post("/phone/confirm", status_code=200, summary="Confirm the new mobile number with its code")
    async def confirm_phone(self, kit: Kit, caller: Caller, data: JSONBody[CodeRequest]) -> Me:
        return await confirm_code(kit, caller, "phone", data.code)


Channel = Literal["email", "phone"]


def _code_hash(kit: Kit, user_id: str, channel: str, target: str, code: str) -> str:
    return kit.box.lookup_hash(f"{user_id}:{channel}:{target}:{code}", purpose="contact-code")


async def send_code(kit: Kit, caller: Caller, channel: Channel, target: str) -> CodeSent:
    account_owner_only(caller)
    await load_me(kit, caller)
    taken = await kit.db[USERS].find_one({channel: target, "_id": {"$ne": caller.user_id}}, {"_id": 1})
    if taken:
        raise Problem(409, "contact-taken", "Conflict", f"this {channel} belongs to another account")
    now = datetime.now(UTC)
    code_id = f"{caller.user_id}:{channel}"
    previous: dict[str, Any] | None = await kit.db[CONTACT_CODES].find_one({"_id": code_id}, {"sent_at": 1})
    resend_after = kit.settings.contact_code_resend_seconds
    if previous and (wait := resend_after - (now - previous["sent_at"]).total_seconds()) > 0:
        raise Problem(
            429,
            "code-sent-recently",
            "Too many requests",
            "a code was sent a moment ago; wait before asking again",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    code = f"{secrets.randbelow(1_000_000):06d}"
    ttl = kit.settings.contact_code_ttl_seconds

    async def write(tx: Tx) -> None:
        await tx.db[CONTACT_CODES].replace_one(
            {"_id": code_id},
            {
                "target": target,
                "code_hash": _code_hash(kit, caller.user_id, channel, target, code),
                "attempts": 0,
                "sent_at": now,
                "expires_at": now + timedelta(seconds=ttl),
            },
            upsert=True,
            session=tx.session,
        )
        # The notification outbox: support's notifier delivers these; nothing is sent from here.
        await tx.db[NOTIFICATIONS].insert_one(
            {
                "_id": new_id(),
                "user_id": caller.user_id,
                "channel": "sms" if channel == "phone" else "email",
                "to": target,
                "template": f"verify-{channel}",
                "params": {"code": code, "minutes": ttl // 60},
                "created_at": now,
                "status": "pending",
            },
            session=tx.session,
        )

    await kit.runtime.uow.run(write)
    masked = mask_phone(target) if channel == "phone" else mask_email(target)
    return CodeSent(sent_to=masked, expires_in=ttl)


async def confirm_code(kit: Kit, caller: Caller, channel: Channel, code: str) -> Me:
    account_owner_only(caller)
    code_id = f"{caller.user_id}:{channel}"
    now = datetime.now(UTC)
    pending: dict[str, Any] | None = await kit.db[CONTACT_CODES].find_one({"_id": code_id})
    if pending is None or pending["expires_at"] <= now:
        raise Problem(409, "no-pending-code", "Conflict", f"no code is pending for the {channel}; ask for a new one")
    if pending["attempts"] >= kit.settings.contact_code_max_attempts:
        await kit.db[CONTACT_CODES].delete_one({"_id": code_id})
        raise Problem(429, "too-many-attempts", "Too many attempts", "too many wrong codes; ask for a new one")
    target = pending["target"]
    if not secrets.compare_digest(pending["code_hash"], _code_hash(kit, caller.user_id, channel, target, code.strip())):
        await kit.db[CONTACT_CODES].update_one({"_id": code_id}, {"$inc": {"attempts": 1}})
        raise field_error("code", "is wrong")

    async def write(tx: Tx) -> None:
        # The code is consumed in the same transaction that binds the contact: it works once.
        removed = await tx.db[CONTACT_CODES].delete_one(
            {"_id": code_id, "code_hash": pending["code_hash"]}, session=tx.session
        )
        if not removed.deleted_count:
            raise Problem(409, "no-pending-code", "Conflict", "the code was already used")
        await tx.db[USERS].update_one({"_id": caller.user_id}, {"$set": {channel: target}}, session=tx.session)
        tx.emit(ContactChanged(user_id=caller.user_id, **{channel: target}))

    try:
        await kit.runtime.uow.run(write)
    except DuplicateKeyError as exc:
        raise Problem(409, "contact-taken", "Conflict", f"this {channel} belongs to another account") from exc
    return me_view(await load_me(kit, caller))
