"""The vault's admin endpoints under `/api/v1/admin/skus/{sku_id}`: import card keys, list them
(never their codes), disable them, see and rebuild a SKU's stock."""

from __future__ import annotations

import hashlib
import tempfile
from typing import Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.openapi import ResponseSpec

from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.schemas import (
    DisableCodes,
    DisableCodesResult,
    DisableResult,
    ImportJobAccepted,
    ImportResult,
    KeyView,
    LineIssue,
    StockView,
)
from services.fulfilment.usecases import stock, vault
from services.fulfilment.usecases.imports import CHUNK_BYTES, Upload
from shared.auth import ADMIN, STAFF, Caller
from shared.errors import Problem, validation_problem
from shared.idempotency import IdempotencyHeader, idempotency_key
from shared.paging import Page, Paging

_RAW_TYPES = ("text/plain", "text/csv", "application/octet-stream")


async def _spool(request: Request[Any, Any, Any]) -> Upload:
    """The upload, streamed into a spooled file (memory up to 1 MiB, then disk) and digested on
    the way: never held whole in memory, let alone twice."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form()  # Litestar streams the file part into a spooled file
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise validation_problem([{"field": "file", "message": "attach the key file as form field `file`"}])
        digest = hashlib.sha256()
        upload.file.seek(0)
        while chunk := upload.file.read(CHUNK_BYTES):
            digest.update(chunk)
        return Upload(upload.file, upload.file.tell(), digest.hexdigest(), f"file:{upload.filename or 'upload'}")
    if content_type in _RAW_TYPES or not content_type:
        spooled = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115 - lives with the request
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            spooled.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        return Upload(spooled, size, digest.hexdigest(), "body")  # type: ignore[arg-type]
    raise Problem(
        415,
        "unsupported-media-type",
        "Unsupported media type",
        "send the keys as text/plain (one per line) or as multipart/form-data with a `file`",
    )


def _key_view(d: dict[str, Any]) -> KeyView:
    return KeyView(
        key_id=d["_id"],
        status=d["status"],
        batch_id=d["batch_id"],
        line=d["line"],
        vault_key_id=d["kid"],
        imported_at=d["imported_at"],
        expires_at=d.get("expires_at"),
        order_id=d.get("order_id"),
        sold_at=d.get("sold_at"),
        disabled_at=d.get("disabled_at"),
    )


class VaultController(Controller):
    path = "/api/v1/admin/skus/{sku_id:str}"
    tags = ["card-key vault"]

    @post(
        "/card-keys",
        guards=[STAFF],
        status_code=200,
        summary="Import card keys: one per line or card,password (text/plain body or multipart `file`)",
        description=(
            "Up to 256 KiB: imported at once, 200 with the report. Larger: queued as a job, 202 "
            "`{job_id, status_url}`; follow it at `GET /api/v1/admin/card-key-imports/{job_id}`. The same "
            "upload with the same Idempotency-Key is the same job."
        ),
        responses={
            200: ResponseSpec(ImportResult, description="A small import, done: the report"),
            202: ResponseSpec(ImportJobAccepted, description="A large import was queued as a job"),
            409: ResponseSpec(None, description="not a card-key SKU, or a concurrent import"),
            415: ResponseSpec(None, description="neither text/plain nor multipart/form-data"),
        },
    )
    async def import_keys(
        self,
        request: Request[Any, Any, Any],
        deps: FulfilmentDeps,
        caller: Caller,
        sku_id: str,
        idempotency: IdempotencyHeader = None,
    ) -> Response[ImportResult | ImportJobAccepted]:
        key = idempotency_key(idempotency)
        report = await vault.import_keys(deps, sku_id, lambda: _spool(request), by=caller.user_id, key=key)
        if isinstance(report, str):
            accepted = ImportJobAccepted(job_id=report, status_url=f"/api/v1/admin/card-key-imports/{report}")
            return Response(accepted, status_code=202)
        return Response(
            ImportResult(
                accepted=report.accepted,
                duplicates=len(report.duplicates),
                duplicate_lines=[LineIssue(int(str(d["line"])), str(d["reason"])) for d in report.duplicates],
                invalid=[LineIssue(int(str(d["line"])), str(d["reason"])) for d in report.invalid],
                batch_id=report.batch_id,
                available=report.available,
            )
        )

    @get("/card-keys", guards=[STAFF], summary="The SKU's card keys (never their codes)")
    async def list_keys(
        self,
        deps: FulfilmentDeps,
        paging: Paging,
        sku_id: str,
        status: Literal["available", "sold", "disabled"] | None = None,
    ) -> Page[KeyView]:
        docs, total = await vault.list_keys(deps, sku_id, status, paging)
        return paging.of([_key_view(d) for d in docs], total)

    @post("/card-keys/{key_id:str}/disable", guards=[ADMIN], status_code=200, summary="Take a key out of sale")
    async def disable(self, deps: FulfilmentDeps, sku_id: str, key_id: str) -> DisableResult:
        await vault.disable_key(deps, sku_id, key_id)
        return DisableResult(key_id, "disabled")

    @post(
        "/card-keys/disable",
        guards=[ADMIN],
        status_code=200,
        summary="Disable keys by their codes (e.g. a supplier's void list); answers by position, never echoes codes",
    )
    async def disable_by_codes(self, deps: FulfilmentDeps, sku_id: str, data: DisableCodes) -> DisableCodesResult:
        return DisableCodesResult(**await vault.disable_codes(deps, sku_id, data.codes))

    @get("/stock", guards=[STAFF], summary="{available, reserved, sold} of the SKU")
    async def stock(self, deps: FulfilmentDeps, sku_id: str) -> StockView:
        return await stock.stock_view(deps, sku_id)

    @post("/stock/rebuild", guards=[ADMIN], status_code=200, summary="Recompute the supply counter from the vault")
    async def rebuild_stock(self, deps: FulfilmentDeps, sku_id: str) -> StockView:
        return await stock.rebuild_stock(deps, sku_id)
