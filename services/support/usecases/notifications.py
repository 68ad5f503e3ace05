"""In-app notifications, each with an email sent by the mailer loop after commit.

A notice is written in the same transaction as what caused it (an order event applied once, a
ticket change), so the buyer is told once. The email is queued on the notice itself
(`email.status = pending`) and sent after commit, retried until the SMTP server takes it.

Sending is at-least-once: a notice is marked sent after the SMTP server accepted it; a claim
(`next_at` pushed past the send timeout, in one update per batch) keeps two replicas from sending
the same one concurrently, and the outcomes of a batch are written with one bulk write. The
address is read at send time from the `contacts` projection, because identity's events and the
order's may arrive in either order; a notice with no address after a grace period is dropped
from the queue (`no-address`). Bodies never contain card keys (see domain.order_notice).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from services.support import domain
from services.support.deps import SupportDeps
from services.support.mailer import MailNotSent
from services.support.usecases.batches import each_bounded, lease_end
from shared.contracts.envelope import new_id, utcnow
from shared.errors import not_found
from shared.messaging.outbox import Tx

log = logging.getLogger(__name__)
NO_ADDRESS_GRACE = timedelta(minutes=10)


async def notify(
    deps: SupportDeps, tx: Tx, *, user_id: str, kind: str, subject: str, body: str, ref: dict[str, str]
) -> str:
    now = utcnow()
    doc: dict[str, Any] = {
        "_id": new_id(),
        "user_id": user_id,
        "kind": kind,
        "subject": subject,
        "body": body,
        "ref": ref,
        "created_at": now,
        "read_at": None,
        "email": {"status": "pending", "attempts": 0, "next_at": now},
    }
    await deps.store.add_notification(doc, tx=tx)
    return str(doc["_id"])


async def list_own(
    deps: SupportDeps, user_id: str, *, unread_only: bool, skip: int, limit: int
) -> tuple[list[dict[str, Any]], int, int]:
    """(notices, total, unread count) of the caller, newest first."""
    return await deps.store.notifications_of(user_id, unread_only=unread_only, skip=skip, limit=limit)


async def mark_read(deps: SupportDeps, user_id: str, notification_id: str) -> dict[str, Any]:
    doc = await deps.store.mark_read(user_id, notification_id, at=utcnow())
    if doc is None:
        raise not_found("notification")
    return doc


async def mark_all_read(deps: SupportDeps, user_id: str) -> int:
    return await deps.store.mark_all_read(user_id, at=utcnow())


# -- emails ---------------------------------------------------------------------------------------


async def send_due_emails(deps: SupportDeps, limit: int = 50, concurrency: int = 4) -> int:
    """Send up to `limit` due emails (a few round trips per batch); returns how many were handled."""
    now = utcnow()
    claimed = await deps.store.claim_due_emails(
        now=now, lease_until=lease_end(now, deps.settings.smtp_timeout_seconds), limit=limit
    )
    if not claimed:
        return 0
    addresses = await deps.store.emails_of(list({d["user_id"] for d in claimed}))

    async def send(doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return str(doc["_id"]), await _send_one(deps, doc, addresses.get(doc["user_id"]))

    await deps.store.save_email_outcomes(await each_bounded(claimed, send, concurrency=concurrency))
    return len(claimed)


async def _send_one(deps: SupportDeps, doc: dict[str, Any], address: str | None) -> dict[str, Any]:
    """Send one email; returns the fields to set on the notice."""
    now = utcnow()
    if not address:
        if now - doc["created_at"] > NO_ADDRESS_GRACE:
            return {"email.status": "no-address"}
        # Look again soon (identity's event is usually just behind), then less often:
        # a burst of notices for unknown addresses must not become a write storm.
        waits = int(doc["email"].get("waits", 0)) + 1
        return {"email.next_at": now + domain.backoff(waits, initial_ms=500, max_ms=60_000), "email.waits": waits}
    try:
        await deps.mailer.send(to=address, subject=doc["subject"], body=doc["body"], notification_id=doc["_id"])
    except MailNotSent as exc:
        attempts = int(doc["email"].get("attempts", 0)) + 1
        status = domain.after_failure(attempts, deps.settings.mail_max_attempts)
        log.warning("email for notification %s failed (attempt %d): %s", doc["_id"], attempts, exc)
        return {
            "email.status": "failed" if status == "dead" else "pending",
            "email.attempts": attempts,
            "email.next_at": now + domain.backoff(attempts, initial_ms=1000, max_ms=10 * 60 * 1000),
            "email.error": str(exc)[:300],
        }
    return {"email.status": "sent", "email.sent_at": utcnow(), "email.to": address}


async def send_emails_forever(deps: SupportDeps) -> None:
    """The mailer: send what is due, sleep a poll interval when nothing was."""
    poll = deps.settings.mail_poll_interval_ms / 1000
    while True:
        try:
            if await send_due_emails(deps) == 0:
                await asyncio.sleep(poll)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A failed batch (the database away) is retried here rather than by the supervisor,
            # whose backoff grows to half a minute.
            log.exception("mailer iteration failed; retrying")
            await asyncio.sleep(1.0)
