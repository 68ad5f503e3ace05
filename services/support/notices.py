"""In-app notifications, each with an email to send (by services/support/mailer.py).

A notice is written in the same transaction as what caused it (an order event applied once, a
ticket change), so the buyer is told once. The email is queued on the notice itself
(`email.status = pending`) and sent after commit, retried until the SMTP server takes it.
"""

from __future__ import annotations

from typing import Any

from services.support.store import NOTIFICATIONS
from shared.contracts.envelope import new_id, utcnow
from shared.messaging.outbox import Tx


async def notify(tx: Tx, *, user_id: str, kind: str, subject: str, body: str, ref: dict[str, str]) -> str:
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
    await tx.db[NOTIFICATIONS].insert_one(doc, session=tx.session)
    return str(doc["_id"])
