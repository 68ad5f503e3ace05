"""Large card-key imports as background jobs: the upload is spooled to the database in chunks and
answered 202 at once; a supervised worker (`run_import_jobs`) validates the whole file, writes its
keys once, chunk by chunk with the job's progress in the same transaction (held back from sale
while the job is unsettled), and only when every line is in closes the job as succeeded, which
makes the whole batch sellable in one step, and adds it to supply.

    queued -> running -> succeeded | failed          (domain.IMPORT_JOB)

A job is held under a lease the worker renews with every chunk; a worker that dies leaves the
lease to run out and the job is taken over where its last chunk committed. A failed job deletes
its keys: nothing of it was ever sellable. Also here: the batch list and disabling a batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any

from pymongo.errors import DuplicateKeyError

from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.domain import (
    ENCODINGS,
    MAX_REPORTED_LINES,
    ImportStatus,
    LineJudge,
    LineReader,
    UnreadableFile,
    decodes_as,
    expiry,
)
from services.fulfilment.store import LeaseLost, disable_batch_op, import_op, sealed_keys
from services.fulfilment.usecases.stock import apply_supply, apply_supply_soon
from shared.contracts.envelope import new_id, utcnow
from shared.contracts.fulfilment import KeysImported
from shared.errors import not_found
from shared.idempotency import derived_id, fingerprint
from shared.messaging.outbox import Tx
from shared.runtime import Runtime

log = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024


@dataclass
class Upload:
    """An uploaded file spooled by the HTTP layer (memory up to 1 MiB, then a temporary file)."""

    file: IO[bytes]
    size: int
    digest: str
    source: str

    def chunks(self) -> Iterator[bytes]:
        self.file.seek(0)
        while chunk := self.file.read(CHUNK_BYTES):
            yield chunk


async def start_job(deps: FulfilmentDeps, sku_id: str, upload: Upload, *, by: str, key: str | None) -> str:
    """Spool the upload into the database and queue its job; the same upload with the same
    Idempotency-Key is the same job (a different upload with it: 422)."""
    jobs = deps.store.jobs
    fp = fingerprint(sku_id, upload.digest)
    earlier = await jobs.recall(by, key, fp)
    if earlier is not None:
        return earlier
    job_id = derived_id("card-key-import", by, key) if key else new_id()
    upload_id = new_id()
    for n, chunk in enumerate(upload.chunks()):
        await jobs.save_chunk(upload_id, n, chunk)
    now = utcnow()
    doc: dict[str, Any] = {
        "_id": job_id,
        "sku_id": sku_id,
        "status": ImportStatus.QUEUED.value,
        "by": by,
        "source": upload.source,
        "upload_id": upload_id,
        "size": upload.size,
        "total": None,
        "processed": 0,
        "accepted": 0,
        "duplicates": 0,
        "invalid": [],
        "invalid_count": 0,
        "batch_id": new_id(),
        "next_line": 1,
        "created_at": now,
        "lease_until": now - timedelta(seconds=1),
    }

    async def create(tx: Tx) -> None:
        await jobs.create(tx, doc, key, fp)

    try:
        await deps.uow.run(create)
    except DuplicateKeyError:
        # A concurrent twin with the same key won: its job is the answer, this upload goes.
        await jobs.drop_upload(upload_id)
        winner = await jobs.recall(by, key, fp)
        if winner is None:
            raise
        return winner
    log.info("card-key import job %s queued for SKU %s (%d bytes)", job_id, sku_id, upload.size)
    return job_id


async def get_job(deps: FulfilmentDeps, job_id: str) -> dict[str, Any]:
    job = await deps.store.jobs.get(job_id)
    if job is None:
        raise not_found("import job")
    return job


# -- the worker --------------------------------------------------------------------------------------


async def run_import_jobs(rt: Runtime) -> None:
    """Background loop: take the next queued job (or one whose worker died) and run it; apply
    supply changes of disabled batches that a crash left pending."""
    deps: FulfilmentDeps = rt.deps
    owner = new_id()
    lease = timedelta(seconds=deps.settings.import_lease_seconds)
    while True:
        await apply_pending_supply(deps)
        job = await deps.store.jobs.claim(owner, utcnow(), lease)
        if job is None:
            await asyncio.sleep(deps.settings.import_poll_seconds)
            continue
        try:
            await run_job(deps, job, owner)
        except LeaseLost:
            log.warning("import job %s was taken over by another worker", job["_id"])


async def _lines(deps: FulfilmentDeps, job: dict[str, Any], encoding: str) -> AsyncIterator[tuple[int, str]]:
    """The file's lines, read chunk by chunk from the database."""
    reader = LineReader(encoding)
    async for chunk in deps.store.jobs.chunks(job["upload_id"]):
        for line in reader.feed(chunk):
            yield line
    for line in reader.finish():
        yield line


async def _encoding(deps: FulfilmentDeps, job: dict[str, Any]) -> str:
    for encoding in ENCODINGS:
        check = decodes_as(encoding)
        try:
            async for chunk in deps.store.jobs.chunks(job["upload_id"]):
                check(chunk, False)
            check(b"", True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise UnreadableFile("the file is neither UTF-8 nor GB18030 text")


async def run_job(deps: FulfilmentDeps, job: dict[str, Any], owner: str) -> None:
    jobs = deps.store.jobs
    settings = deps.settings
    lease = timedelta(seconds=settings.import_lease_seconds)
    if job.get("encoding") is None:
        # First pass: the encoding and every line judged before any key is written, so a bad file
        # fails without writing (and deleting) anything, and `total` is known for the progress.
        try:
            encoding = await _encoding(deps, job)
        except UnreadableFile as exc:
            await fail(deps, job, owner, str(exc))
            return
        judge = LineJudge(settings.vault_max_key_length)
        total, invalid_count = 0, 0
        invalid: list[dict[str, Any]] = []
        async for number, raw in _lines(deps, job, encoding):
            verdict = judge.judge(number, raw)
            if verdict is None:
                continue
            total += 1
            if verdict.reason is not None:
                invalid_count += 1
                if len(invalid) < MAX_REPORTED_LINES:
                    invalid.append({"line": number, "reason": verdict.reason})
        if invalid_count:
            reason = f"{invalid_count} invalid lines: nothing was imported"
            await fail(deps, job, owner, reason, invalid=invalid, invalid_count=invalid_count, total=total)
            return
        if total == 0:
            await fail(deps, job, owner, "no card keys: the file is empty", total=0)
            return
        if total > settings.vault_max_lines:
            reason = f"at most {settings.vault_max_lines} keys per import; split the file"
            await fail(deps, job, owner, reason, total=total)
            return
        await jobs.update(job["_id"], owner, {"encoding": encoding, "total": total, "lease_until": utcnow() + lease})
        job = {**job, "encoding": encoding, "total": total}
    sku = await deps.store.get_sku(job["sku_id"])
    if sku is None or sku.get("delivery_mode") != "auto":
        await fail(deps, job, owner, "the SKU no longer takes card keys")
        return
    await _stage_all(deps, job, sku, owner)
    await _publish(deps, job, owner)


async def _stage_all(deps: FulfilmentDeps, job: dict[str, Any], sku: dict[str, Any], owner: str) -> None:
    """Second pass: the keys in chunks, each chunk and the progress in one transaction. Lines
    before `next_line` were committed by an earlier run: judged again (for repeats within the
    file), not written again."""
    settings = deps.settings
    lease = timedelta(seconds=settings.import_lease_seconds)
    resume_at: int = job["next_line"]
    judge = LineJudge(settings.vault_max_key_length)
    expires_at = expiry(job["created_at"], sku.get("validity_days"))
    processed = int(job["processed"])
    keys: list[tuple[int, str]] = []
    repeats = 0
    lines_in_chunk = 0

    async def flush(next_line: int) -> None:
        nonlocal keys, repeats, lines_in_chunk, processed
        docs = await asyncio.to_thread(
            sealed_keys, deps.vault, job["sku_id"], keys, job["batch_id"], job["created_at"], expires_at
        )
        processed += lines_in_chunk
        progress = {"processed": processed, "next_line": next_line, "lease_until": utcnow() + lease}
        await deps.store.jobs.stage(deps.uow, job["_id"], owner, docs, progress, repeats)
        keys, repeats, lines_in_chunk = [], 0, 0

    last = resume_at - 1
    async for number, raw in _lines(deps, job, job["encoding"]):
        last = number
        verdict = judge.judge(number, raw)
        if verdict is None or number < resume_at:
            continue
        lines_in_chunk += 1
        if verdict.code is not None:
            keys.append((number, verdict.code))
        else:
            repeats += 1
        if len(keys) >= settings.import_chunk_keys:
            await flush(number + 1)
    if lines_in_chunk or keys:
        await flush(last + 1)


async def _publish(deps: FulfilmentDeps, job: dict[str, Any], owner: str) -> None:
    """Every line is in: one transaction closes the job as succeeded, which is what makes its keys
    sellable (they were written `available`, held back while the job was unsettled), and writes
    the batch record and `fulfilment.keys-imported`; then supply grows. No key is written twice."""
    jobs = deps.store.jobs
    job = await jobs.get(job["_id"]) or job
    batch_id: str = job["batch_id"]
    accepted = int(job["accepted"])

    async def finish(tx: Tx) -> None:
        # The job first: in this transaction its keys are sellable from here on, so the count
        # below (the event's `available`) includes them.
        await jobs.finish(
            tx,
            job,
            owner,
            ImportStatus.SUCCEEDED,
            {"processed": job["total"], **({} if accepted else {"batch_id": None})},
        )
        if accepted:
            available = await jobs.record_batch(
                tx,
                {
                    "_id": batch_id,
                    "sku_id": job["sku_id"],
                    "accepted": accepted,
                    "duplicates": int(job["duplicates"]),
                    "invalid": 0,
                    "by": job["by"],
                    "source": job["source"],
                    "job_id": job["_id"],
                    "at": utcnow(),
                },
            )
            tx.emit(
                KeysImported(
                    sku_id=job["sku_id"],
                    batch_id=batch_id,
                    accepted=accepted,
                    available=available,
                    duplicates=int(job["duplicates"]),
                    invalid=0,
                )
            )

    await deps.uow.run(finish)
    await jobs.drop_upload(job["upload_id"])
    if accepted:
        await apply_supply_soon(deps.store, deps.inventory, job["sku_id"], accepted, import_op(batch_id))
    log.info("import job %s succeeded: %d keys in batch %s", job["_id"], accepted, batch_id)


async def fail(
    deps: FulfilmentDeps,
    job: dict[str, Any],
    owner: str,
    reason: str,
    *,
    invalid: list[dict[str, Any]] | None = None,
    invalid_count: int = 0,
    total: int | None = None,
) -> None:
    """Nothing of a failed job stays: its keys are deleted before it is marked failed (a restart
    in between deletes again and fails again)."""
    jobs = deps.store.jobs
    await jobs.release_batch(job["batch_id"])

    async def close(tx: Tx) -> None:
        await jobs.finish(
            tx,
            job,
            owner,
            ImportStatus.FAILED,
            {
                "reason": reason,
                "invalid": invalid or [],
                "invalid_count": invalid_count,
                "total": total if total is not None else job.get("total"),
                "accepted": 0,
                "batch_id": None,
            },
        )

    await deps.uow.run(close)
    await jobs.drop_upload(job["upload_id"])
    log.info("import job %s failed: %s", job["_id"], reason)


# -- batches ---------------------------------------------------------------------------------------


async def list_batches(deps: FulfilmentDeps, sku_id: str, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    return await deps.store.jobs.batches(sku_id, skip, limit)


async def disable_batch(deps: FulfilmentDeps, batch_id: str, *, by: str) -> tuple[dict[str, Any], int]:
    """A supplier's recall: every still-available key of the batch out of sale at once (sold keys
    stay with their orders). Repeating it disables nothing more."""
    now = utcnow()

    async def fn(tx: Tx) -> tuple[dict[str, Any] | None, int]:
        return await deps.store.jobs.disable_batch(tx, batch_id, by, now)

    batch, disabled = await deps.uow.run(fn)
    if batch is None:
        raise not_found("card-key batch")
    if disabled:
        await _apply_batch_disable(deps, batch["_id"], batch["sku_id"], disabled)
    return batch, disabled


async def _apply_batch_disable(deps: FulfilmentDeps, batch_id: str, sku_id: str, disabled: int) -> None:
    try:
        await apply_supply(deps.store, deps.inventory, sku_id, -disabled, disable_batch_op(batch_id))
    except Exception as exc:
        log.warning("supply change of disabled batch %s deferred to the worker: %r", batch_id, exc)
        return
    await deps.store.jobs.supply_applied(batch_id)


async def apply_pending_supply(deps: FulfilmentDeps) -> None:
    """Batch disables whose supply change a crash left unapplied (same op id: counted once)."""
    for batch in await deps.store.jobs.pending_supply():
        await _apply_batch_disable(deps, batch["_id"], batch["sku_id"], int(batch.get("disabled_keys", 0)))
