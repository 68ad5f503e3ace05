"""The card-key vault's operations: the SKU projection it keeps, importing keys (encrypted, each
key once ever), listing them (never their codes) and taking them out of sale."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.domain import UnreadableFile, decode_upload, parse_batch
from services.fulfilment.store import ImportConflict, ImportReport, disable_op, import_op
from services.fulfilment.usecases import imports
from services.fulfilment.usecases.imports import Upload
from services.fulfilment.usecases.stock import apply_supply_soon
from shared.contracts.catalog import SkuChanged
from shared.contracts.envelope import utcnow
from shared.contracts.fulfilment import KeyDisabled
from shared.errors import Problem, not_found, validation_problem
from shared.messaging.outbox import Tx
from shared.paging import Paging

log = logging.getLogger(__name__)


async def project_sku(tx: Tx, deps: FulfilmentDeps, event: SkuChanged) -> None:
    """What the vault needs of a SKU: validity (expiry of imported keys) and delivery mode."""
    doc: dict[str, Any] = {
        "_id": event.sku_id,
        "revision": event.revision,
        "name": event.name,
        "product_name": event.product_name,
        "delivery_mode": event.delivery_mode,
        "validity_days": event.validity_days,
        "on_sale": event.on_sale,
        "key_mode": event.key_mode,
        "recipient_fields": msgspec.to_builtins(event.recipient_fields),
    }
    await deps.store.project_sku(tx, doc)


async def import_keys(
    deps: FulfilmentDeps,
    sku_id: str,
    read: Callable[[], Awaitable[Upload]],
    *,
    by: str,
    key: str | None = None,
) -> ImportReport | str:
    """`read` spools the upload; it is read only once the SKU is known to take card keys. A small
    upload is imported at once (the report); a larger one than `vault_job_threshold_bytes` is
    queued as a job (its id; `key` is the request's Idempotency-Key)."""
    settings = deps.settings
    sku = await deps.store.get_sku(sku_id) or await deps.store.wait_for_sku(sku_id, settings.sku_wait_seconds)
    if sku is None:
        raise not_found("SKU")
    if sku.get("delivery_mode") != "auto":
        raise Problem(
            409,
            "not-a-card-key-sku",
            "Not a card-key SKU",
            f"SKU {sku_id} is delivered {sku.get('delivery_mode')}, card keys only go to auto-delivery SKUs",
        )
    upload = await read()
    if upload.size > settings.vault_job_threshold_bytes:
        return await imports.start_job(deps, sku_id, upload, by=by, key=key)
    data, source = b"".join(upload.chunks()), upload.source
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
        report = await deps.store.import_keys(deps.uow, deps.vault, sku, batch, by=by, source=source)
    except ImportConflict as exc:
        raise Problem(409, "import-conflict", "Concurrent import", str(exc)) from exc
    if report.batch_id is not None:
        await apply_supply_soon(deps.store, deps.inventory, sku_id, report.accepted, import_op(report.batch_id))
    log.info(
        "imported %d card keys into SKU %s (batch %s, %d duplicates, %d invalid)",
        report.accepted,
        sku_id,
        report.batch_id,
        len(report.duplicates),
        len(report.invalid),
    )
    return report


async def list_keys(
    deps: FulfilmentDeps, sku_id: str, status: str | None, paging: Paging
) -> tuple[list[dict[str, Any]], int]:
    """The SKU's keys without their codes (the store never reads ciphertext for a list)."""
    return await deps.store.list_keys(sku_id, status, paging.skip, paging.limit)


async def disable_key(deps: FulfilmentDeps, sku_id: str, key_id: str) -> None:
    """Take one key out of sale; disabling a disabled key again is fine, a sold one is 409."""

    async def fn(tx: Tx) -> str | None:
        before = await deps.store.disable_key(tx, sku_id, key_id)
        if before == "available":
            tx.emit(KeyDisabled(sku_id=sku_id, key_id=key_id))
        return before

    before = await deps.uow.run(fn)
    if before is None:
        raise not_found("card key of this SKU")
    if before == "sold":
        raise Problem(
            409, "already-sold", "Already sold", "the key was delivered to an order; handle it as after-sales"
        )
    if before == "available":
        await apply_supply_soon(deps.store, deps.inventory, sku_id, -1, disable_op(key_id))


async def disable_codes(deps: FulfilmentDeps, sku_id: str, codes: list[str]) -> dict[str, list[int]]:
    """Disable keys by their codes (a supplier's void list): positions in `codes` per outcome."""
    now = utcnow()

    async def fn(tx: Tx) -> tuple[dict[str, list[int]], list[str]]:
        return await deps.store.disable_codes(tx, deps.vault, sku_id, codes, now)

    outcome, disabled = await deps.uow.run(fn)
    for key_id in disabled:
        await apply_supply_soon(deps.store, deps.inventory, sku_id, -1, disable_op(key_id))
    return outcome
