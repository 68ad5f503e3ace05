"""Partner webhooks: registration (the secret is shown once), the delivery log, replay, and the
dispatcher that sends each delivery record to its partner's URL, signed.

A delivery record is created once per (webhook, event) in the transaction that consumed the
order event (usecases/orders.py), so an event is queued for a webhook exactly once. The
dispatcher claims a batch of due records (pushing `next_attempt_at` past the request timeout, so
two replicas never send one at the same time), POSTs the stored payload bytes with
`X-Kameng-Signature: hex(HMAC-SHA256(secret, body))`, and then:

- 2xx: `delivered` (never sent again unless someone replays it);
- anything else: `attempts + 1`, next try after an exponential backoff, and after
  `webhook_max_attempts` failures the record is `dead` (the dead-letter list) until replayed.

A receiver can still see a delivery twice if this process dies between its 2xx and the mark;
receivers deduplicate on `event_id` (docs/partner-events.md).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from services.support import domain, metrics
from services.support.deps import SupportDeps
from services.support.domain import DeliveryStatus
from services.support.usecases.batches import each_bounded, lease_end
from shared.contracts.envelope import new_id, utcnow
from shared.errors import Problem, not_found, validation_problem

log = logging.getLogger(__name__)
DELIVERY_STATUSES = tuple(s.value for s in DeliveryStatus)


async def register(deps: SupportDeps, partner_user_id: str, url: str, events: list[str]) -> dict[str, Any]:
    """A new webhook with a fresh secret (returned here only)."""
    settings = deps.settings
    events = list(dict.fromkeys(events))
    errors = domain.check_webhook(url, events, require_https=settings.environment == "prod")
    if errors:
        raise validation_problem(errors)
    if await deps.store.count_webhooks(partner_user_id) >= settings.webhook_max_per_partner:
        raise Problem(409, "too-many-webhooks", "Conflict", f"at most {settings.webhook_max_per_partner} webhooks")
    doc = {
        "_id": new_id(),
        "partner_user_id": partner_user_id,
        "url": url,
        "events": events,
        "secret": secrets.token_hex(32),
        "created_at": utcnow(),
    }
    await deps.store.add_webhook(doc)
    return doc


async def list_own(deps: SupportDeps, partner_user_id: str) -> list[dict[str, Any]]:
    return await deps.store.webhooks_of(partner_user_id)


async def remove(deps: SupportDeps, partner_user_id: str, webhook_id: str) -> None:
    """Delete the partner's webhook; what it still had to send is cancelled."""
    if not await deps.store.remove_webhook(partner_user_id, webhook_id):
        raise not_found("webhook")


def _status_filter(status: str | None) -> dict[str, Any]:
    if status is None:
        return {}
    if status not in DELIVERY_STATUSES:
        raise validation_problem([{"field": "status", "message": f"one of {', '.join(DELIVERY_STATUSES)}"}])
    return {"status": status}


async def deliveries_of(
    deps: SupportDeps, partner_user_id: str, webhook_id: str, *, status: str | None, skip: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The delivery log of the partner's own webhook, newest first."""
    if not await deps.store.owns_webhook(partner_user_id, webhook_id):
        raise not_found("webhook")
    query = {"webhook_id": webhook_id, **_status_filter(status or None)}
    return await deps.store.deliveries(query, newest_first=True, skip=skip, limit=limit)


async def deliveries_by_status(
    deps: SupportDeps, status: str, *, skip: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Staff: every delivery in `status` (the dead-letter list by default), oldest first."""
    return await deps.store.deliveries(_status_filter(status), newest_first=False, skip=skip, limit=limit)


async def replay(deps: SupportDeps, query: dict[str, str]) -> dict[str, Any]:
    """Queue a dead (or delivered) delivery again, attempts reset; a pending one is left alone,
    a cancelled one cannot be replayed (409)."""
    now = utcnow()
    note = {"at": now, "status_code": None, "error": "replay requested", "duration_ms": 0}
    doc = await deps.store.requeue_delivery(query, now=now, note=note)
    if doc is None:
        doc = await deps.store.delivery(query)
        if doc is None:
            raise not_found("delivery")
        if doc["status"] != DeliveryStatus.PENDING:
            raise Problem(409, "not-replayable", "Conflict", f"a {doc['status']} delivery cannot be replayed")
    return doc


# -- the dispatcher -------------------------------------------------------------------------------


async def dispatch_due(deps: SupportDeps, limit: int = 100, concurrency: int = 8) -> int:
    """Claim and send up to `limit` due deliveries, `concurrency` at a time; the outcomes are
    written with one bulk write. Returns how many were claimed."""
    now = utcnow()
    claimed = await deps.store.claim_due_deliveries(
        now=now, lease_until=lease_end(now, deps.settings.webhook_timeout_seconds), limit=limit
    )
    if not claimed:
        return 0
    hooks = await deps.store.webhooks_by_id(list({d["webhook_id"] for d in claimed}))

    async def send(doc: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        return await _deliver(deps, doc, hooks.get(doc["webhook_id"]))

    outcomes = await each_bounded(claimed, send, concurrency=concurrency)
    await deps.store.save_delivery_outcomes(outcomes)
    metrics.deliveries(outcomes)
    return len(claimed)


async def _deliver(
    deps: SupportDeps, doc: dict[str, Any], hook: dict[str, Any] | None
) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    """POST one delivery; returns (its id, the fields to set, the attempt for its log)."""
    if hook is None:  # deleted after the record was queued
        return doc["_id"], {"status": DeliveryStatus.CANCELLED.value}, None
    body = bytes(doc["payload"])
    headers = domain.webhook_headers(secret=hook["secret"], body=body, event_id=doc["event_id"], delivery_id=doc["_id"])
    attempt = await deps.webhooks.post(hook["url"], body, headers)
    now = utcnow()
    entry = {"at": now, "status_code": attempt.status_code, "error": attempt.error, "duration_ms": attempt.duration_ms}
    attempts = int(doc.get("attempts", 0)) + 1
    settings = deps.settings
    if attempt.ok:
        return doc["_id"], {"status": DeliveryStatus.DELIVERED.value, "delivered_at": now, "attempts": attempts}, entry
    outcome = domain.after_failure(attempts, settings.webhook_max_attempts)
    wait = domain.backoff(
        attempts, initial_ms=settings.webhook_backoff_initial_ms, max_ms=settings.webhook_backoff_max_ms
    )
    fields: dict[str, Any] = {"status": outcome, "attempts": attempts, "next_attempt_at": now + wait}
    if outcome == "dead":
        fields["dead_at"] = now
    return doc["_id"], fields, entry


async def dispatch_forever(deps: SupportDeps) -> None:
    """The dispatcher: send what is due; when nothing was, sleep until the next retry is due
    (so short backoffs are kept), at most a poll interval."""
    poll = deps.settings.webhook_poll_interval_ms / 1000
    try:
        while True:
            try:
                sent = await dispatch_due(deps)
                idle = 0.0 if sent else await _idle_time(deps, poll)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Retried here rather than by the supervisor, whose backoff grows to half a minute.
                log.exception("webhook dispatch failed; retrying")
                idle = poll
            if idle:
                await asyncio.sleep(idle)
    except asyncio.CancelledError:
        # Shutting down: the connection pool goes with the process. (A crash keeps it: the
        # supervisor restarts this loop with the same sender.)
        await deps.webhooks.aclose()
        raise


async def _idle_time(deps: SupportDeps, poll: float) -> float:
    due = await deps.store.next_delivery_due()
    if due is None:
        return poll
    return min(poll, max(float((due - utcnow()).total_seconds()), 0.01))
