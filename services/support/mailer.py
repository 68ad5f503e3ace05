"""Sends the emails queued on notifications (aiosmtplib), after their transaction committed.

At-least-once: a notice is marked sent after the SMTP server accepted it; a claim (`next_at`
pushed past the send timeout, in one update per batch) keeps two replicas from sending the same
one concurrently, and the outcomes of a batch are written with one bulk write. The
address is read at send time from the `contacts` projection, because identity's events and the
order's may arrive in either order; a notice with no address after a grace period is dropped
from the queue (`no-address`). Bodies never contain card keys (see domain.order_notice).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import aiosmtplib
from pymongo import UpdateOne

from services.support import domain
from services.support.settings import SupportSettings
from services.support.store import CONTACTS, NOTIFICATIONS, claim_due
from shared.contracts.envelope import utcnow
from shared.mongo import Mongo

log = logging.getLogger(__name__)
NO_ADDRESS_GRACE = timedelta(minutes=10)


class Mailer:
    def __init__(self, mongo: Mongo, settings: SupportSettings) -> None:
        self.mongo = mongo
        self.settings = settings
        self.sent = 0

    async def run(self) -> None:
        poll = self.settings.mail_poll_interval_ms / 1000
        while True:
            try:
                if await self.send_due() == 0:
                    await asyncio.sleep(poll)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("mailer iteration failed; retrying")
                await asyncio.sleep(1.0)

    async def send_due(self, limit: int = 50, concurrency: int = 4) -> int:
        """Send up to `limit` due emails (a few round trips per batch); returns how many."""
        coll = self.mongo.db[NOTIFICATIONS]
        now = utcnow()
        claimed = await claim_due(
            coll,
            {"email.status": "pending", "email.next_at": {"$lte": now}},
            sort=[("email.next_at", 1)],
            lease={"email.next_at": now + timedelta(seconds=self.settings.smtp_timeout_seconds * 2 + 5)},
            limit=limit,
        )
        if not claimed:
            return 0
        user_ids = list({d["user_id"] for d in claimed})
        contacts = {c["_id"]: c for c in await self.mongo.db[CONTACTS].find({"_id": {"$in": user_ids}}).to_list(None)}
        gate = asyncio.Semaphore(concurrency)

        async def one(doc: dict[str, Any]) -> UpdateOne:
            async with gate:
                changes = await self._send_one(doc, (contacts.get(doc["user_id"]) or {}).get("email"))
            return UpdateOne({"_id": doc["_id"]}, {"$set": changes})

        updates = await asyncio.gather(*(one(d) for d in claimed))
        await coll.bulk_write(list(updates), ordered=False)
        return len(claimed)

    async def _send_one(self, doc: dict[str, Any], address: str | None) -> dict[str, Any]:
        """Send one email; returns the fields to set on the notice."""
        now = utcnow()
        if not address:
            if now - doc["created_at"] > NO_ADDRESS_GRACE:
                return {"email.status": "no-address"}
            # Look again soon (identity's event is usually just behind), then less often:
            # a burst of notices for unknown addresses must not become a write storm.
            waits = int(doc["email"].get("waits", 0)) + 1
            return {"email.next_at": now + domain.backoff(waits, initial_ms=500, max_ms=60_000), "email.waits": waits}
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = address
        message["Subject"] = doc["subject"]
        message["X-Kameng-Notification"] = doc["_id"]
        message.set_content(doc["body"])
        try:
            await aiosmtplib.send(
                message,
                hostname=self.settings.smtp_host,
                port=self.settings.smtp_port,
                username=self.settings.smtp_username,
                password=self.settings.smtp_password,
                use_tls=self.settings.smtp_use_tls,
                timeout=self.settings.smtp_timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            attempts = int(doc["email"].get("attempts", 0)) + 1
            status = domain.after_failure(attempts, self.settings.mail_max_attempts)
            log.warning("email for notification %s failed (attempt %d): %r", doc["_id"], attempts, exc)
            return {
                "email.status": "failed" if status == "dead" else "pending",
                "email.attempts": attempts,
                "email.next_at": now + domain.backoff(attempts, initial_ms=1000, max_ms=10 * 60 * 1000),
                "email.error": f"{type(exc).__name__}: {exc}"[:300],
            }
        self.sent += 1
        return {"email.status": "sent", "email.sent_at": utcnow(), "email.to": address}
