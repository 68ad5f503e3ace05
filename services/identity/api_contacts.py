"""Binding or changing the account's email or mobile number with a one-time code, delivered
through the notification outbox (`/api/v1/me/email`, `/api/v1/me/phone`)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from litestar import post
from litestar.params import JSONBody
from pymongo.errors import DuplicateKeyError

from services.identity.api_me import load_me, me_view
from services.identity.domain import mask_email, mask_phone, normalize_email, normalize_phone
from services.identity.kit import IdentityController, Kit, account_owner_only, field_error
from services.identity.store import CONTACT_CODES, NOTIFICATIONS, USERS
from services.identity.views import CodeRequest, CodeSent, EmailRequest, Me, PhoneRequest
from shared.auth import Caller
from shared.contracts.envelope import new_id
from shared.contracts.identity import ContactChanged
from shared.errors import Problem
from shared.messaging.outbox import Tx


class ContactsController(IdentityController):
    path = "/api/v1/me"

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
