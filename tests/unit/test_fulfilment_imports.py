"""Card-key import jobs with in-memory fakes of their deps (the job store, unit of work,
inventory): a bad line fails the job before any key is written, a worker that dies mid-job is taken
over and every key ends up stored once, the same upload with the same Idempotency-Key is one job,
supply grows once and only when the batch is available, a batch is disabled once."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

import pytest
from pymongo.errors import DuplicateKeyError

from services.fulfilment.crypto import Vault
from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.domain import CARD_KEY, IMPORT_JOB, UNSETTLED_JOBS, ImportStatus, KeyStatus
from services.fulfilment.settings import FulfilmentSettings
from services.fulfilment.store import LeaseLost, import_op
from services.fulfilment.usecases import imports
from services.fulfilment.usecases.imports import Upload
from shared.errors import Problem
from shared.idempotency import fingerprint
from shared.messaging.outbox import Tx

T = TypeVar("T")
VAULT = Vault.from_config("k1:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=")
SKU = "sku-1"


class FakeJobs:
    """The rules the real store gets from MongoDB: guarded moves from `IMPORT_JOB`, the lease, a
    chunk and the job's progress written together, unique fingerprints."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, list[bytes]] = {}
        self.keys: dict[str, dict[str, Any]] = {}
        self.batches_: dict[str, dict[str, Any]] = {}
        self.remembered: dict[tuple[str, str], tuple[str, str]] = {}
        self.fail_stage_after: int | None = None
        self.staged_chunks = 0

    async def save_chunk(self, upload_id: str, n: int, data: bytes) -> None:
        self.uploads.setdefault(upload_id, []).append(data)

    async def chunks(self, upload_id: str) -> AsyncIterator[bytes]:
        for chunk in self.uploads[upload_id]:
            yield chunk

    async def drop_upload(self, upload_id: str) -> None:
        self.uploads.pop(upload_id, None)

    async def recall(self, owner: str, key: str | None, fp: str) -> str | None:
        if key is None or (owner, key) not in self.remembered:
            return None
        seen_fp, ref = self.remembered[(owner, key)]
        if seen_fp != fp:
            raise Problem(422, "idempotency-key-reused", "reused", "")
        return ref

    async def create(self, tx: Tx, doc: dict[str, Any], key: str | None, fp: str) -> None:
        if doc["_id"] in self.jobs:
            raise DuplicateKeyError("job")
        self.jobs[doc["_id"]] = dict(doc)
        if key is not None:
            self.remembered[(doc["by"], key)] = (fp, doc["_id"])

    async def get(self, job_id: str) -> dict[str, Any] | None:
        job = self.jobs.get(job_id)
        return dict(job) if job else None

    async def claim(self, owner: str, now: datetime, lease: timedelta) -> dict[str, Any] | None:
        for job in sorted(self.jobs.values(), key=lambda j: j["created_at"]):
            movable = job["status"] in IMPORT_JOB.sources(ImportStatus.RUNNING)
            if movable and job["lease_until"] < now:
                job.update(status="running", owner=owner, lease_until=now + lease)
                return dict(job)
        return None

    def _held(self, job_id: str, owner: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        if job.get("owner") != owner or job["status"] != "running":
            raise LeaseLost(job_id)
        return job

    async def update(self, job_id: str, owner: str, fields: dict[str, Any]) -> None:
        self._held(job_id, owner).update(fields)

    async def stage(
        self,
        uow: Any,
        job_id: str,
        owner: str,
        docs: list[dict[str, Any]],
        progress: dict[str, Any],
        repeats: int = 0,
    ) -> tuple[int, int]:
        if self.fail_stage_after is not None and self.staged_chunks >= self.fail_stage_after:
            raise ConnectionError("the worker died here")  # nothing of this chunk is written
        job = self._held(job_id, owner)
        fps = {k["fp"] for k in self.keys.values()}
        fresh = [d for d in docs if d["fp"] not in fps]
        for d in fresh:
            assert d["_id"] not in self.keys, "a key written twice"
            self.keys[d["_id"]] = d
        job.update(progress)
        job["accepted"] += len(fresh)
        job["duplicates"] += len(docs) - len(fresh) + repeats
        self.staged_chunks += 1
        return len(fresh), len(docs) - len(fresh)

    def _unsettled(self, batch_id: str) -> bool:
        return any(j["batch_id"] == batch_id and j["status"] in UNSETTLED_JOBS for j in self.jobs.values())

    def sellable(self, sku_id: str) -> int:
        """The real store's `sellable`: available keys outside the batches of unsettled jobs."""
        return sum(
            1
            for d in self.keys.values()
            if d["sku_id"] == sku_id and d["status"] == "available" and not self._unsettled(d["batch_id"])
        )

    async def release_batch(self, batch_id: str) -> None:
        if self._unsettled(batch_id):
            for key_id in [k for k, d in self.keys.items() if d["batch_id"] == batch_id]:
                del self.keys[key_id]

    async def finish(
        self, tx: Tx, job: dict[str, Any], owner: str, target: ImportStatus, fields: dict[str, Any]
    ) -> None:
        held = self._held(job["_id"], owner)
        assert IMPORT_JOB.can_move(ImportStatus(held["status"]), target)
        held.update(status=target.value, **fields)

    async def record_batch(self, tx: Tx, doc: dict[str, Any]) -> int:
        self.batches_[doc["_id"]] = doc
        return self.sellable(doc["sku_id"])

    async def disable_batch(self, tx: Tx, batch_id: str, by: str, now: datetime) -> tuple[dict[str, Any] | None, int]:
        batch = self.batches_.get(batch_id)
        if batch is None:
            return None, 0
        n = 0
        for d in self.keys.values():
            if d["batch_id"] == batch_id and d["status"] in CARD_KEY.sources(KeyStatus.DISABLED):
                d["status"] = "disabled"
                n += 1
        if n:
            batch["supply_pending"] = True
            batch["disabled_keys"] = batch.get("disabled_keys", 0) + n
        return {**batch, "sold": 0}, n

    async def pending_supply(self, limit: int = 20) -> list[dict[str, Any]]:
        return [b for b in self.batches_.values() if b.get("supply_pending")]

    async def supply_applied(self, batch_id: str) -> None:
        self.batches_[batch_id].pop("supply_pending", None)


class FakeStore:
    def __init__(self) -> None:
        self.jobs = FakeJobs()
        self.sku = {"_id": SKU, "delivery_mode": "auto", "validity_days": None}

    async def get_sku(self, sku_id: str) -> dict[str, Any] | None:
        return self.sku if sku_id == SKU else None


class FakeUow:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def run(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        tx = Tx(db=cast(Any, None), session=cast(Any, None), producer="fulfilment")
        result = await fn(tx)
        self.events += [env.type for env, _ in tx.events]
        for action in tx.post_commit:
            await action()
        return result


class FakeInventory:
    def __init__(self) -> None:
        self.supply: dict[str, int] = {SKU: 0}
        self.ops: list[str] = []

    async def known(self, sku_id: str) -> bool:
        return True

    async def adjust_supply(self, sku_id: str, delta: int, op_id: str, *, hands_over: str | None = None) -> int | None:
        if op_id in self.ops:
            return None
        self.ops.append(op_id)
        self.supply[sku_id] += delta
        return self.supply[sku_id]


def world(**settings: Any) -> tuple[FulfilmentDeps, FakeStore, FakeUow, FakeInventory]:
    store, uow, inventory = FakeStore(), FakeUow(), FakeInventory()
    deps = FulfilmentDeps(
        settings=FulfilmentSettings(import_chunk_keys=100, **settings),
        store=cast(Any, store),
        uow=cast(Any, uow),
        inventory=cast(Any, inventory),
        supplier=cast(Any, None),
        vault=VAULT,
    )
    return deps, store, uow, inventory


def upload_of(text: str, encoding: str = "utf-8") -> Upload:
    data = text.encode(encoding)
    return Upload(io.BytesIO(data), len(data), fingerprint(data), "body")


async def run_until_idle(deps: FulfilmentDeps, owner: str = "w1") -> None:
    while (job := await deps.store.jobs.claim(owner, datetime.now().astimezone(), timedelta(seconds=15))) is not None:
        await imports.run_job(deps, job, owner)


KEYS = "\n".join(f"K-{i:04d},P{i}" for i in range(1000))


async def test_a_job_stages_keys_and_makes_them_available_only_at_the_end() -> None:
    deps, store, uow, inventory = world()
    job_id = await imports.start_job(deps, SKU, upload_of(KEYS + "\nK-0003,P3"), by="admin", key=None)
    assert store.jobs.jobs[job_id]["status"] == "queued"
    await run_until_idle(deps)
    job = store.jobs.jobs[job_id]
    assert (job["status"], job["total"], job["processed"], job["accepted"], job["duplicates"]) == (
        "succeeded",
        1001,
        1001,
        1000,
        1,
    )
    assert {d["status"] for d in store.jobs.keys.values()} == {"available"}
    assert all(d["batch_id"] == job["batch_id"] for d in store.jobs.keys.values())
    assert uow.events == ["fulfilment.keys-imported"]
    assert inventory.supply[SKU] == 1000 and inventory.ops == [import_op(job["batch_id"])]
    assert store.jobs.uploads == {}  # the upload is gone once the job ended


async def test_one_bad_line_fails_the_job_before_any_key_is_written() -> None:
    deps, store, uow, inventory = world()
    lines = KEYS.split("\n")
    lines[500] = "a,b,c"
    job_id = await imports.start_job(deps, SKU, upload_of("\n".join(lines)), by="admin", key=None)
    await run_until_idle(deps)
    job = store.jobs.jobs[job_id]
    assert job["status"] == "failed" and job["batch_id"] is None and job["invalid_count"] == 1
    assert job["invalid"] == [{"line": 501, "reason": "expected card or card,password, found 3 fields"}]
    assert store.jobs.keys == {} and store.jobs.staged_chunks == 0
    assert inventory.supply[SKU] == 0 and uow.events == []


async def test_only_the_first_thousand_invalid_lines_are_reported() -> None:
    deps, store, _, _ = world()
    job_id = await imports.start_job(deps, SKU, upload_of("\n".join("a,b,c" for _ in range(1500))), by="a", key=None)
    await run_until_idle(deps)
    job = store.jobs.jobs[job_id]
    assert (job["status"], len(job["invalid"]), job["invalid_count"]) == ("failed", 1000, 1500)


async def test_a_job_whose_worker_died_is_taken_over_and_each_key_stored_once() -> None:
    deps, store, _, inventory = world()
    job_id = await imports.start_job(deps, SKU, upload_of(KEYS, "gb18030"), by="admin", key=None)
    store.jobs.fail_stage_after = 4
    with pytest.raises(ConnectionError):
        await run_until_idle(deps, "dead")
    job = store.jobs.jobs[job_id]
    assert (job["status"], job["processed"], len(store.jobs.keys)) == ("running", 400, 400)
    # Written once as available, yet nothing sellable while the job is unsettled.
    assert {d["status"] for d in store.jobs.keys.values()} == {"available"}
    assert store.jobs.sellable(SKU) == 0 and inventory.supply[SKU] == 0
    store.jobs.fail_stage_after = None
    # The dead worker's lease still holds: nobody takes the job yet.
    assert await store.jobs.claim("w2", datetime.now().astimezone(), timedelta(seconds=15)) is None
    job["lease_until"] = datetime.now().astimezone() - timedelta(seconds=1)
    await run_until_idle(deps, "w2")
    assert store.jobs.jobs[job_id]["status"] == "succeeded" and store.jobs.jobs[job_id]["accepted"] == 1000
    assert sorted(d["line"] for d in store.jobs.keys.values()) == list(range(1, 1001))
    assert inventory.supply[SKU] == 1000


async def test_the_same_upload_with_the_same_key_is_one_job_and_another_upload_is_refused() -> None:
    deps, store, _, _ = world()
    first = await imports.start_job(deps, SKU, upload_of(KEYS), by="admin", key="k-1")
    assert await imports.start_job(deps, SKU, upload_of(KEYS), by="admin", key="k-1") == first
    assert len(store.jobs.jobs) == 1 and len(store.jobs.uploads) == 1
    with pytest.raises(Problem) as refused:
        await imports.start_job(deps, SKU, upload_of(KEYS + "\nX"), by="admin", key="k-1")
    assert refused.value.status_code == 422
    assert await imports.start_job(deps, SKU, upload_of(KEYS), by="admin", key="k-2") != first


async def test_a_batch_is_disabled_once_and_supply_follows() -> None:
    deps, store, _, inventory = world()
    job_id = await imports.start_job(deps, SKU, upload_of(KEYS), by="admin", key=None)
    await run_until_idle(deps)
    batch_id = store.jobs.jobs[job_id]["batch_id"]
    _, disabled = await imports.disable_batch(deps, batch_id, by="admin")
    assert disabled == 1000 and inventory.supply[SKU] == 0
    assert (await imports.disable_batch(deps, batch_id, by="admin"))[1] == 0 and inventory.supply[SKU] == 0
    assert not store.jobs.batches_[batch_id].get("supply_pending")
    with pytest.raises(Problem) as missing:
        await imports.disable_batch(deps, "nope", by="admin")
    assert missing.value.status_code == 404
