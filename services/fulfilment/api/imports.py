"""Import jobs and batches of card keys (staff): a job's progress and report, a SKU's batches, and
disabling a whole batch (a supplier's recall)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post
from litestar.openapi import ResponseSpec

from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.schemas import BatchDisabled, BatchView, ImportJobView, LineIssue
from services.fulfilment.usecases import imports
from shared.auth import ADMIN, STAFF, Caller
from shared.paging import Page, Paging


def _job_view(d: dict[str, Any]) -> ImportJobView:
    return ImportJobView(
        job_id=d["_id"],
        sku_id=d["sku_id"],
        status=d["status"],
        total=d.get("total"),
        processed=int(d["processed"]),
        accepted=int(d["accepted"]),
        duplicates=int(d["duplicates"]),
        invalid=[LineIssue(int(i["line"]), str(i["reason"])) for i in d.get("invalid", [])],
        invalid_count=int(d.get("invalid_count", 0)),
        batch_id=d["batch_id"] if d["status"] == "succeeded" else None,
        reason=d.get("reason"),
        created_at=d["created_at"],
        finished_at=d.get("finished_at"),
    )


def _batch_view(d: dict[str, Any]) -> BatchView:
    return BatchView(
        batch_id=d["_id"],
        sku_id=d["sku_id"],
        count=int(d["accepted"]),
        sold=int(d["sold"]),
        disabled=int(d["disabled"]),
        imported_by=str(d.get("by", "")),
        imported_at=d["at"],
        source=str(d.get("source", "")),
        job_id=d.get("job_id"),
        disabled_at=d.get("disabled_at"),
    )


class ImportJobController(Controller):
    path = "/api/v1/admin/card-key-imports"
    tags = ["card-key vault"]

    @get(
        "/{job_id:str}",
        guards=[STAFF],
        summary="A card-key import job: status (queued, running, succeeded, failed), progress and report",
        responses={404: ResponseSpec(None, description="no such job")},
    )
    async def job(self, deps: FulfilmentDeps, job_id: str) -> ImportJobView:
        return _job_view(await imports.get_job(deps, job_id))


class BatchController(Controller):
    path = "/api/v1/admin"
    tags = ["card-key vault"]

    @get(
        "/skus/{sku_id:str}/card-key-batches",
        guards=[STAFF],
        summary="The SKU's card-key batches, newest first: keys, sold, disabled, who imported them and when",
    )
    async def batches(self, deps: FulfilmentDeps, paging: Paging, sku_id: str) -> Page[BatchView]:
        docs, total = await imports.list_batches(deps, sku_id, paging.skip, paging.limit)
        return paging.of([_batch_view(d) for d in docs], total)

    @post(
        "/card-key-batches/{batch_id:str}/disable",
        guards=[ADMIN],
        status_code=200,
        summary="Take every unsold key of a batch out of sale (a supplier's recall); repeating it is harmless",
        responses={404: ResponseSpec(None, description="no such batch")},
    )
    async def disable(self, deps: FulfilmentDeps, caller: Caller, batch_id: str) -> BatchDisabled:
        batch, disabled = await imports.disable_batch(deps, batch_id, by=caller.user_id)
        return BatchDisabled(batch_id=batch_id, disabled=disabled, sold=int(batch.get("sold", 0)))
