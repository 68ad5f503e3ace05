"""The fulfilment service's HTTP API (served under the public paths, reached through the gateway).

The vault's admin endpoints: import card keys, list them (never their codes), disable one, see and
rebuild a SKU's stock.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import Parameter

from services.fulfilment import store
from services.fulfilment.crypto import Vault
from services.fulfilment.domain import UnreadableFile, decode_upload, parse_batch
from services.fulfilment.settings import FulfilmentSettings
from services.fulfilment.stock import apply_supply_soon, rebuild
from shared.auth import Caller, require_roles
from shared.contracts.envelope import utcnow
from shared.contracts.fulfilment import KeyDisabled
from shared.errors import Problem, not_found, validation_problem
from shared.inventory import Inventory
from shared.messaging.outbox import Tx
from shared.runtime import Runtime

log = logging.getLogger(__name__)

_RAW_TYPES = ("text/plain", "text/csv", "application/octet-stream")


class LineIssue(msgspec.Struct, frozen=True):
    line: int
    reason: str


class ImportResult(msgspec.Struct, frozen=True, kw_only=True):
    accepted: int
    duplicates: int
    invalid: list[LineIssue]
    duplicate_lines: list[LineIssue]
    """Which lines were duplicates and why (an earlier line of the batch, or already in the vault)."""
    batch_id: str | None
    """None when nothing was accepted (nothing was stored)."""
    available: int


class StockView(msgspec.Struct, frozen=True, kw_only=True):
    sku_id: str
    available: int
    """Usable keys in the vault (MongoDB truth: not sold, not disabled, not expired)."""
    reserved: int
    """Units held by open orders (Redis, kept by the order service)."""
    sold: int
    disabled: int
    expired: int
    supply: int
    """The Redis supply counter the order service sells against (equals `available` when in sync)."""
    sellable: int


class KeyView(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    status: str
    batch_id: str
    line: int
    vault_key_id: str
    imported_at: datetime
    expires_at: datetime | None
    order_id: str | None = None
    sold_at: datetime | None = None
    disabled_at: datetime | None = None


class KeyPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[KeyView]
    page: int
    page_size: int
    total: int


class DisableCodes(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    codes: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=512)]], msgspec.Meta(min_length=1, max_length=1000)
    ]


class DisableCodesResult(msgspec.Struct, frozen=True, kw_only=True):
    """Positions (0-based) in the request's `codes`, per outcome."""

    disabled: list[int]
    already_disabled: list[int]
    sold: list[int]
    not_found: list[int]


class DisableResult(msgspec.Struct, frozen=True):
    key_id: str
    status: str


@functools.cache
def _vault(keys: str, fingerprint_key: str | None) -> Vault:
    return Vault.from_config(keys, fingerprint_key)


def vault_for(settings: Any) -> Vault:
    s: FulfilmentSettings = settings
    fp = s.vault_fingerprint_key.get_secret_value() if s.vault_fingerprint_key else None
    return _vault(s.vault_keys.get_secret_value(), fp)


async def _read_upload(request: Request[Any, Any, Any]) -> tuple[bytes, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise validation_problem([{"field": "file", "message": "attach the key file as form field `file`"}])
        return await upload.read(), f"file:{upload.filename or 'upload'}"
    if content_type in _RAW_TYPES or not content_type:
        return await request.body(), "body"
    raise Problem(
        415,
        "unsupported-media-type",
        "Unsupported media type",
        "send the keys as text/plain (one per line) or as multipart/form-data with a `file`",
    )


class VaultController(Controller):
    path = "/api/v1/admin/skus/{sku_id:str}"
    tags = ["card-key vault"]

    @post(
        "/card-keys",
        guards=[require_roles("admin", "staff")],
        status_code=200,
        summary="Import card keys: one per line or card,password (text/plain body or multipart `file`)",
    )
    async def import_keys(
        self, request: Request[Any, Any, Any], runtime: Runtime, caller: Caller, sku_id: str
    ) -> ImportResult:
        settings: FulfilmentSettings = runtime.settings  # type: ignore[assignment]
        sku = await store.get_sku(runtime.mongo.db, sku_id)
        if sku is None:
            raise not_found("SKU (or the catalog's change has not reached the vault yet; retry shortly)")
        if sku.get("delivery_mode") != "auto":
            raise Problem(
                409,
                "not-a-card-key-sku",
                "Not a card-key SKU",
                f"SKU {sku_id} is delivered {sku.get('delivery_mode')}, card keys only go to auto-delivery SKUs",
            )
        data, source = await _read_upload(request)
        try:
            text = decode_upload(data)
        except UnreadableFile as exc:
            raise validation_problem([{"field": "file", "message": str(exc)}]) from exc
        batch = await asyncio.to_thread(parse_batch, text, max_length=settings.vault_max_key_length)
        lines = len(batch.keys) + len(batch.invalid) + len(batch.duplicate_lines)
        if lines == 0:
            raise validation_problem([{"field": "body", "message": "no card keys: the file is empty"}])
        if lines > settings.vault_max_lines:
            raise validation_problem(
                [{"field": "body", "message": f"at most {settings.vault_max_lines} keys per import; split the file"}]
            )
        try:
            report = await store.import_keys(
                runtime.uow, vault_for(settings), sku, batch, by=caller.user_id, now=utcnow(), source=source
            )
        except store.ImportConflict as exc:
            raise Problem(409, "import-conflict", "Concurrent import", str(exc)) from exc
        if report.batch_id is not None:
            await apply_supply_soon(
                runtime.mongo.db, runtime.get(Inventory), sku_id, report.accepted, store.import_op(report.batch_id)
            )
        log.info(
            "imported %d card keys into SKU %s (batch %s, %d duplicates, %d invalid)",
            report.accepted,
            sku_id,
            report.batch_id,
            len(report.duplicates),
            len(report.invalid),
        )
        return ImportResult(
            accepted=report.accepted,
            duplicates=len(report.duplicates),
            duplicate_lines=[LineIssue(int(str(d["line"])), str(d["reason"])) for d in report.duplicates],
            invalid=[LineIssue(int(str(d["line"])), str(d["reason"])) for d in report.invalid],
            batch_id=report.batch_id,
            available=report.available,
        )

    @get("/card-keys", guards=[require_roles("admin", "staff")], summary="The SKU's card keys (never their codes)")
    async def list_keys(
        self,
        runtime: Runtime,
        sku_id: str,
        status: Literal["available", "sold", "disabled"] | None = None,
        page: Annotated[int, Parameter(ge=1, le=100_000)] = 1,
        page_size: Annotated[int, Parameter(ge=1, le=500)] = 50,
    ) -> KeyPage:
        docs, total = await store.list_keys(runtime.mongo.db, sku_id, status, page, page_size)
        items = [
            KeyView(
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
            for d in docs
        ]
        return KeyPage(items=items, page=page, page_size=page_size, total=total)

    @post(
        "/card-keys/{key_id:str}/disable",
        guards=[require_roles("admin")],
        status_code=200,
        summary="Take a key out of sale",
    )
    async def disable(self, runtime: Runtime, sku_id: str, key_id: str) -> DisableResult:
        async def fn(tx: Tx) -> str | None:
            before = await store.disable_key(tx, sku_id, key_id, utcnow())
            if before == "available":
                tx.emit(KeyDisabled(sku_id=sku_id, key_id=key_id))
            return before

        before = await runtime.uow.run(fn)
        if before is None:
            raise not_found("card key of this SKU")
        if before == "sold":
            raise Problem(
                409, "already-sold", "Already sold", "the key was delivered to an order; handle it as after-sales"
            )
        if before == "available":
            await apply_supply_soon(runtime.mongo.db, runtime.get(Inventory), sku_id, -1, store.disable_op(key_id))
        return DisableResult(key_id, "disabled")

    @post(
        "/card-keys/disable",
        guards=[require_roles("admin")],
        status_code=200,
        summary="Disable keys by their codes (e.g. a supplier's void list); answers by position, never echoes codes",
    )
    async def disable_by_codes(self, runtime: Runtime, sku_id: str, data: DisableCodes) -> DisableCodesResult:
        vault = vault_for(runtime.settings)
        now = utcnow()

        async def fn(tx: Tx) -> tuple[dict[str, list[int]], list[str]]:
            return await store.disable_codes(tx, vault, sku_id, data.codes, now)

        outcome, disabled = await runtime.uow.run(fn)
        inventory = runtime.get(Inventory)
        for key_id in disabled:
            await apply_supply_soon(runtime.mongo.db, inventory, sku_id, -1, store.disable_op(key_id))
        return DisableCodesResult(**outcome)

    @get("/stock", guards=[require_roles("admin", "staff")], summary="{available, reserved, sold} of the SKU")
    async def stock(self, runtime: Runtime, sku_id: str) -> StockView:
        return await _stock_view(runtime, sku_id)

    @post(
        "/stock/rebuild",
        guards=[require_roles("admin")],
        status_code=200,
        summary="Recompute the supply counter from the vault",
    )
    async def rebuild_stock(self, runtime: Runtime, sku_id: str) -> StockView:
        await rebuild(runtime.mongo.db, runtime.get(Inventory), sku_id)
        return await _stock_view(runtime, sku_id)


async def _stock_view(runtime: Runtime, sku_id: str) -> StockView:
    counts = await store.vault_counts(runtime.mongo.db, sku_id, utcnow())
    redis_stock = await runtime.get(Inventory).stock(sku_id)
    return StockView(
        sku_id=sku_id,
        available=counts["available"],
        reserved=redis_stock.held,
        sold=counts["sold"],
        disabled=counts["disabled"],
        expired=counts["expired"],
        supply=redis_stock.supply,
        sellable=redis_stock.sellable,
    )


CONTROLLERS: list[Any] = [VaultController]
