"""Sending the queued one-time codes (the `notifications` delivery outbox): a supervised
background loop of identity (`ServiceSpec.background`), at least once.

Each message is claimed with a lease (its `next_at` pushed ahead), sent through the notifier and
then marked sent, its sealed parameters erased. A process that dies after storing a code and
before sending it leaves the message pending: the next loop (this replica restarted, or another)
sends it. One that dies after sending and before marking sends it again: the same code twice,
harmless. A message whose code has expired is dropped unsent; one the provider keeps refusing is
retried with backoff until then."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from cryptography.exceptions import InvalidTag

from services.identity.deps import IdentityDeps, deps_from
from services.identity.notifier import DeliveryFailed
from services.identity.usecases.codes import open_params
from shared.runtime import Runtime

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=30)


def retry_delay(attempts: int) -> timedelta:
    """1 s doubling to 60 s between tries of one message."""
    return timedelta(seconds=min(60, 2 ** max(0, attempts - 1)))


async def deliver_due(deps: IdentityDeps, limit: int = 20) -> int:
    """Send up to `limit` due messages; how many were taken."""
    taken = 0
    while taken < limit:
        now = deps.clock()
        doc = await deps.store.claim_due_notification(now, now + LEASE)
        if doc is None:
            break
        taken += 1
        if "sealed" not in doc or doc["expires_at"] <= now:
            await deps.store.notification_done(doc["_id"], "expired", now)
            log.warning("%s message %s expired before it could be sent", doc["channel"], doc["_id"])
            continue
        try:
            params = open_params(deps, doc)
        except (ValueError, KeyError, InvalidTag):
            # Sealed under a key this process does not hold (rotated away) or damaged: it can
            # never be sent, so it must not block the queue.
            await deps.store.notification_done(doc["_id"], "failed", now)
            log.error("%s message %s cannot be opened; dropped", doc["channel"], doc["_id"])
            continue
        try:
            await deps.notifier.send(
                channel=doc["channel"], to=doc["to"], template=doc["template"], params=params, ref=doc["_id"]
            )
        except DeliveryFailed as exc:
            attempts = int(doc.get("attempts", 0)) + 1
            await deps.store.notification_retry(doc["_id"], attempts, now + retry_delay(attempts), str(exc))
            log.warning("%s message %s not sent (attempt %d): %s", doc["channel"], doc["_id"], attempts, exc)
            continue
        await deps.store.notification_done(doc["_id"], "sent", deps.clock())
        log.info("%s message %s sent (%s)", doc["channel"], doc["_id"], doc["template"])
    return taken


async def deliver_codes(rt: Runtime) -> None:
    """The background loop: send what is due, then wait a poll interval. A round that fails
    (the database away) ends the loop; the factory restarts it with backoff."""
    deps = deps_from(rt)
    poll = deps.settings.notify_poll_interval_ms / 1000
    while True:
        if await deliver_due(deps) == 0:
            await asyncio.sleep(poll)
