"""Webhook dispatcher: sends each pending delivery record to its partner's URL, signed.

A delivery record is created once per (webhook, event) in the transaction that consumed the
order event (services/support/handlers.py), so an event is queued for a webhook exactly once.
The dispatcher claims a batch of due records (pushing `next_attempt_at` past the request
timeout, so two replicas never send one at the same time), POSTs the stored payload bytes with
`X-Kameng-Signature: hex(HMAC-SHA256(secret, body))`, and then:

- 2xx: `delivered` (never sent again unless someone replays it);
- anything else: `attempts + 1`, next try after an exponential backoff, and after
  `webhook_max_attempts` failures the record is `dead` (the dead-letter list) until replayed.

A receiver can still see a delivery twice if this process dies between its 2xx and the mark;
receivers deduplicate on `event_id` (docs/partner-events.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from typing import Any

import httpx
from pymongo import UpdateOne

from services.support import domain
from services.support.settings import SupportSettings
from services.support.store import DELIVERIES, WEBHOOKS, claim_due
from shared.contracts.envelope import utcnow
from shared.mongo import Mongo

log = logging.getLogger(__name__)
LOG_KEEP = 20  # attempts kept per delivery in its log


class WebhookDispatcher:
    def __init__(self, mongo: Mongo, settings: SupportSettings, client: httpx.AsyncClient | None = None) -> None:
        self.mongo = mongo
        self.settings = settings
        self.client = client or httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        poll = self.settings.webhook_poll_interval_ms / 1000
        try:
            while True:
                try:
                    sent = await self.dispatch_due()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhook dispatch failed; retrying")
                    sent = 0
                if sent == 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=await self._idle_time(poll))
        finally:
            await self.client.aclose()

    async def _idle_time(self, poll: float) -> float:
        """Sleep until the next retry is due (so short backoffs are kept), at most `poll`."""
        nxt = await self.mongo.db[DELIVERIES].find_one(
            {"status": "pending"}, {"next_attempt_at": 1}, sort=[("next_attempt_at", 1)]
        )
        if nxt is None:
            return poll
        due = float((nxt["next_attempt_at"] - utcnow()).total_seconds())
        return min(poll, max(due, 0.01))

    async def dispatch_due(self, limit: int = 100, concurrency: int = 8) -> int:
        """Claim and send up to `limit` due deliveries, `concurrency` at a time; the outcomes
        are written with one bulk write."""
        coll = self.mongo.db[DELIVERIES]
        now = utcnow()
        claimed = await claim_due(
            coll,
            {"status": "pending", "next_attempt_at": {"$lte": now}},
            sort=[("next_attempt_at", 1)],
            lease={"next_attempt_at": now + timedelta(seconds=self.settings.webhook_timeout_seconds * 2 + 5)},
            limit=limit,
        )
        if not claimed:
            return 0
        hook_ids = list({d["webhook_id"] for d in claimed})
        hooks = {h["_id"]: h for h in await self.mongo.db[WEBHOOKS].find({"_id": {"$in": hook_ids}}).to_list(None)}
        gate = asyncio.Semaphore(concurrency)

        async def one(doc: dict[str, Any]) -> UpdateOne:
            async with gate:
                return UpdateOne({"_id": doc["_id"]}, await self._deliver(doc, hooks.get(doc["webhook_id"])))

        updates = await asyncio.gather(*(one(d) for d in claimed))
        await coll.bulk_write(list(updates), ordered=False)
        return len(claimed)

    async def _deliver(self, doc: dict[str, Any], hook: dict[str, Any] | None) -> dict[str, Any]:
        """POST one delivery; returns the update for its record."""
        if hook is None:  # deleted after the record was queued
            return {"$set": {"status": "cancelled"}}
        body = bytes(doc["payload"])
        headers = {
            "Content-Type": "application/json",
            domain.SIGNATURE_HEADER: domain.sign(hook["secret"], body),
            "X-Kameng-Event-Id": doc["event_id"],
            "X-Kameng-Delivery-Id": doc["_id"],
            "User-Agent": "Kameng-Webhooks/1",
        }
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        try:
            response = await self.client.post(hook["url"], content=body, headers=headers)
            status_code = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        now = utcnow()
        entry = {
            "at": now,
            "status_code": status_code,
            "error": error,
            "duration_ms": int((time.monotonic() - started) * 1000),
        }
        attempts = int(doc.get("attempts", 0)) + 1
        if status_code is not None and 200 <= status_code < 300:
            update: dict[str, Any] = {"$set": {"status": "delivered", "delivered_at": now, "attempts": attempts}}
        else:
            outcome = domain.after_failure(attempts, self.settings.webhook_max_attempts)
            wait = domain.backoff(
                attempts,
                initial_ms=self.settings.webhook_backoff_initial_ms,
                max_ms=self.settings.webhook_backoff_max_ms,
            )
            update = {
                "$set": {
                    "status": outcome,
                    "attempts": attempts,
                    "next_attempt_at": now + wait,
                    **({"dead_at": now} if outcome == "dead" else {}),
                }
            }
        update["$push"] = {"log": {"$each": [entry], "$slice": -LOG_KEEP}}
        return update
