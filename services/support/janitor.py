"""Removes evidence files that no ticket references.

Evidence is written to GridFS before the ticket's transaction (GridFS cannot join one) and
removed again if that transaction fails; only a crash in between leaves files behind. They carry
`metadata.ticket_id`, so a periodic sweep finds the ones whose ticket never committed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from motor.motor_asyncio import AsyncIOMotorGridFSBucket

from services.support.store import EVIDENCE_BUCKET, TICKETS
from shared.contracts.envelope import utcnow
from shared.mongo import Mongo

log = logging.getLogger(__name__)


async def sweep_orphan_evidence(mongo: Mongo, *, older_than: timedelta) -> int:
    """Delete evidence files older than `older_than` whose ticket does not exist; returns how many."""
    files = mongo.db[f"{EVIDENCE_BUCKET}.files"]
    cutoff = utcnow() - older_than
    candidates = await files.find({"uploadDate": {"$lt": cutoff}}, {"metadata.ticket_id": 1}).to_list(5000)
    ticket_ids = list({f.get("metadata", {}).get("ticket_id") for f in candidates})
    existing = {t["_id"] for t in await mongo.db[TICKETS].find({"_id": {"$in": ticket_ids}}, {"_id": 1}).to_list(None)}
    bucket = AsyncIOMotorGridFSBucket(mongo.db, bucket_name=EVIDENCE_BUCKET)
    removed = 0
    for f in candidates:
        if f.get("metadata", {}).get("ticket_id") not in existing:
            await bucket.delete(f["_id"])
            removed += 1
    if removed:
        log.warning("removed %d evidence file(s) of tickets that never committed", removed)
    return removed


async def run(mongo: Mongo, *, every: timedelta = timedelta(hours=1)) -> None:
    while True:
        try:
            # Files younger than an hour may belong to a ticket whose transaction is still running.
            await sweep_orphan_evidence(mongo, older_than=timedelta(hours=1))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("evidence sweep failed; trying again later")
        await asyncio.sleep(every.total_seconds())
