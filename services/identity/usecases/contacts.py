"""Binding or changing the account's email or mobile number with a one-time code. The code is
stored only as a keyed hash and queued for delivery in the same transaction (usecases/codes.py);
it may be asked for once a minute and a few times an hour, tried a few times, and works once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pymongo.errors import DuplicateKeyError

from services.identity.deps import IdentityDeps
from services.identity.domain import (
    account_owner_only,
    field_error,
    mask_email,
    mask_phone,
    normalize_email,
    normalize_phone,
    wrong_code,
)
from services.identity.usecases import codes
from services.identity.usecases.me import account
from shared.auth import Caller
from shared.contracts.identity import ContactChanged
from shared.errors import Problem
from shared.messaging.outbox import Tx

Channel = Literal["email", "phone"]


@dataclass(frozen=True)
class CodeSent:
    sent_to: str
    """The contact, masked."""
    expires_in: int


def _subject(user_id: str, channel: str, target: str) -> str:
    return f"{user_id}:{channel}:{target}"


def _contact_taken(channel: Channel) -> Problem:
    return Problem(409, "contact-taken", "Conflict", f"this {channel} belongs to another account")


def _normalized(channel: Channel, raw: str) -> str:
    if channel == "email":
        if (email := normalize_email(raw)) is None:
            raise field_error("email", "is not a valid email address")
        return email
    if (phone := normalize_phone(raw)) is None:
        raise field_error("phone", "is not a mainland China mobile number (1[3-9] + 9 digits)")
    return phone


async def send_code(deps: IdentityDeps, caller: Caller, channel: Channel, raw: str) -> CodeSent:
    """Send a one-time code to the new email or phone (queued for delivery with the code)."""
    target = _normalized(channel, raw)
    account_owner_only(caller)
    await account(deps, caller.user_id)
    if await deps.store.contact_taken(channel, target, by_other_than=caller.user_id):
        raise _contact_taken(channel)
    now = deps.clock()
    code_id = f"{caller.user_id}:{channel}"
    if problem := await codes.limit_problem(deps, code_id, target, now):
        raise problem
    new = codes.new_code(
        deps,
        code_id=code_id,
        subject=_subject(caller.user_id, channel, target),
        user_id=caller.user_id,
        channel="sms" if channel == "phone" else "email",
        to=target,
        template=f"verify-{channel}",
        now=now,
    )

    async def write(tx: Tx) -> None:
        await codes.save(deps, tx, new)

    await deps.uow.run(write)
    masked = mask_phone(target) if channel == "phone" else mask_email(target)
    return CodeSent(sent_to=masked, expires_in=deps.settings.contact_code_ttl_seconds)


async def confirm_code(deps: IdentityDeps, caller: Caller, channel: Channel, code: str) -> dict[str, Any]:
    """Bind the contact the pending code was sent to; the account's view afterwards."""
    account_owner_only(caller)
    code_id = f"{caller.user_id}:{channel}"
    now = deps.clock()
    pending = await deps.store.contact_code(code_id)
    if pending is None or pending["expires_at"] <= now:
        raise Problem(409, "no-pending-code", "Conflict", f"no code is pending for the {channel}; ask for a new one")
    if pending["attempts"] >= deps.settings.contact_code_max_attempts:
        await deps.store.drop_contact_code(code_id)
        raise Problem(429, "too-many-attempts", "Too many attempts", "too many wrong codes; ask for a new one")
    target = pending["target"]
    if not codes.matches(deps, pending, _subject(caller.user_id, channel, target), code):
        await deps.store.count_code_attempt(code_id)
        raise wrong_code("is wrong")

    async def write(tx: Tx) -> None:
        # The code is consumed in the same transaction that binds the contact: it works once.
        if not await deps.store.consume_contact_code(tx, code_id, pending["code_hash"]):
            raise Problem(409, "no-pending-code", "Conflict", "the code was already used")
        await deps.store.set_contact(tx, caller.user_id, channel, target)
        tx.emit(ContactChanged(user_id=caller.user_id, **{channel: target}))

    try:
        await deps.uow.run(write)
    except DuplicateKeyError as exc:
        raise _contact_taken(channel) from exc
    return await account(deps, caller.user_id)
