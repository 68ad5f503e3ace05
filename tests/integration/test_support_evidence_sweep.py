"""The evidence sweep on the real database: files of tickets that never committed go, files of
real tickets and recent uploads stay."""

from __future__ import annotations

from datetime import timedelta

from motor.motor_asyncio import AsyncIOMotorGridFSBucket

from services.support.store import EVIDENCE_BUCKET, TICKETS, sweep_orphan_evidence
from shared.contracts.envelope import new_id
from shared.mongo import connect


async def test_sweep_removes_only_orphans(infra: dict[str, str]) -> None:
    mongo = connect(infra["MONGODB_URL"], f"sweep_{new_id()[:8]}")
    try:
        bucket = AsyncIOMotorGridFSBucket(mongo.db, bucket_name=EVIDENCE_BUCKET)
        await mongo.db[TICKETS].insert_one({"_id": "t-real"})
        kept = await bucket.upload_from_stream("a.png", b"\x89PNG real", metadata={"ticket_id": "t-real"})
        orphan = await bucket.upload_from_stream("b.png", b"\x89PNG lost", metadata={"ticket_id": "t-never"})

        assert await sweep_orphan_evidence(mongo, older_than=timedelta(hours=1)) == 0  # too recent to judge
        assert await sweep_orphan_evidence(mongo, older_than=timedelta(seconds=-1)) == 1
        remaining = {f["_id"] for f in await mongo.db[f"{EVIDENCE_BUCKET}.files"].find().to_list(None)}
        assert remaining == {kept}
        assert orphan not in remaining
        assert await mongo.db[f"{EVIDENCE_BUCKET}.chunks"].count_documents({"files_id": orphan}) == 0
    finally:
        await mongo.client.drop_database(mongo.db.name)
        mongo.close()
