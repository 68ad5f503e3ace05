"""One-time codes sent to a person (binding an email or phone, resetting a password): made here,
stored only as a keyed hash, limited (one a minute per purpose, `CONTACT_CODES_PER_HOUR` per
address), and queued for delivery in the same transaction as the code, with their parameters
sealed. The delivery loop (usecases/delivery.py) sends them after the commit. A code never goes
on the event bus, into a log line or into a trace."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.identity.deps import IdentityDeps
from services.identity.domain import new_contact_code
from shared.contracts.envelope import new_id
from shared.errors import Problem
from shared.messaging.outbox import Tx


@dataclass(frozen=True)
class NewCode:
    """What to write, in one transaction: the pending code and its delivery."""

    code_id: str
    pending: dict[str, Any]
    delivery: dict[str, Any]


def code_hash(deps: IdentityDeps, subject: str, code: str) -> str:
    return deps.box.lookup_hash(f"{subject}:{code}", purpose="contact-code")


def sealed_params_context(notification_id: str) -> str:
    return f"notification:{notification_id}"


def open_params(deps: IdentityDeps, notification: dict[str, Any]) -> dict[str, Any]:
    """The parameters (with the code) of a queued message; only the delivery loop needs them."""
    params: dict[str, Any] = json.loads(
        deps.box.open(notification["sealed"], context=sealed_params_context(notification["_id"]))
    )
    return params


async def limit_problem(deps: IdentityDeps, code_id: str, to: str, now: datetime) -> Problem | None:
    """Why no code may be sent now (asked a moment ago; too many to this address this hour)."""
    previous = await deps.store.contact_code(code_id)
    resend_after = deps.settings.contact_code_resend_seconds
    if previous and (wait := resend_after - (now - previous["sent_at"]).total_seconds()) > 0:
        return Problem(
            429,
            "code-sent-recently",
            "Too many requests",
            "a code was sent a moment ago; wait before asking again",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    if await deps.store.codes_sent_since(to, now - timedelta(hours=1)) >= deps.settings.contact_codes_per_hour:
        return Problem(
            429,
            "too-many-codes",
            "Too many requests",
            "too many codes were sent to this address in the last hour; try again later",
            headers={"Retry-After": "3600"},
        )
    return None


def new_code(
    deps: IdentityDeps, *, code_id: str, subject: str, user_id: str, channel: str, to: str, template: str, now: datetime
) -> NewCode:
    """A fresh code for `subject`, its pending record and its queued delivery."""
    code = new_contact_code()
    ttl = deps.settings.contact_code_ttl_seconds
    expires_at = now + timedelta(seconds=ttl)
    pending = {
        "target": to,
        "code_hash": code_hash(deps, subject, code),
        "attempts": 0,
        "sent_at": now,
        "expires_at": expires_at,
    }
    notification_id = new_id()
    params = json.dumps({"code": code, "minutes": ttl // 60})
    delivery = {
        "_id": notification_id,
        "user_id": user_id,
        "channel": channel,
        "to": to,
        "template": template,
        "sealed": deps.box.seal(params, context=sealed_params_context(notification_id)),
        "created_at": now,
        "expires_at": expires_at,
        "next_at": now,
        "attempts": 0,
        "status": "pending",
    }
    return NewCode(code_id=code_id, pending=pending, delivery=delivery)


async def save(deps: IdentityDeps, tx: Tx, new: NewCode) -> None:
    await deps.store.save_contact_code(tx, new.code_id, new.pending)
    await deps.store.queue_notification(tx, new.delivery)


def matches(deps: IdentityDeps, pending: dict[str, Any], subject: str, code: str) -> bool:
    return secrets.compare_digest(pending["code_hash"], code_hash(deps, subject, code.strip()))
