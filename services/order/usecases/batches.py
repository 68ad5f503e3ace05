"""Batch orders (批量下单) and saved templates (模板).

A batch turns each valid row into an order, and pays for all of them in ONE wallet payment whose
id is the batch id: the buyer pays the batch total once, or not at all. Rows that cannot be
ordered are reported by row number and do not stop the others. With an Idempotency-Key the batch
id is derived from (buyer, key): a retry finds the batch it made.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec

from services.order.deps import OrderDeps
from services.order.domain import BATCH_PREFIX, BatchStatus, with_discount
from services.order.schemas import OrderRequest, TemplateRow
from services.order.sheets import Rejected, Row
from services.order.usecases.outage import redis_answers_503
from services.order.usecases.placing import (
    build_order,
    counts_stock,
    coupon_for,
    emit_placed,
    hold_stock,
    payment_request,
    price,
)
from shared.auth import Caller
from shared.contracts.envelope import new_id, utcnow
from shared.coupons import UNKNOWN, message
from shared.errors import Problem, not_found, validation_problem
from shared.idempotency import derived_id
from shared.messaging.outbox import Tx


def batch_id_for(user_id: str, idempotency_key: str | None) -> str:
    """`B` + a fresh id, or + the id derived from the buyer's key (the same derivation batches
    always had: `derived_id("batch", user, key)`)."""
    if idempotency_key is None:
        return BATCH_PREFIX + new_id()
    return BATCH_PREFIX + derived_id("batch", user_id, idempotency_key)


async def order_sheet(
    deps: OrderDeps,
    caller: Caller,
    rows: list[Row],
    rejected: list[Rejected],
    *,
    save_as_template: str | None,
    idempotency_key: str | None,
    coupon_code: str | None = None,
) -> dict[str, Any]:
    """An uploaded sheet's rows ordered as one batch, optionally saved as a template first."""
    if save_as_template:
        await save_template(
            deps,
            caller,
            save_as_template,
            [TemplateRow(sku_id=r.sku_id, quantity=r.quantity, recipient=r.recipient) for r in rows],
        )
    return await place_batch(deps, caller, rows, rejected, idempotency_key=idempotency_key, coupon_code=coupon_code)


async def run_template(
    deps: OrderDeps, caller: Caller, template_id: str, idempotency_key: str | None
) -> dict[str, Any]:
    """Order a saved template's rows again, as one batch."""
    doc = await deps.store.template(caller.user_id, template_id)
    if doc is None:
        raise not_found("template")
    rows = [
        Row(number=i, sku_id=r["sku_id"], quantity=r["quantity"], recipient=r.get("recipient", {}))
        for i, r in enumerate(doc["rows"], start=1)
    ]
    return await place_batch(deps, caller, rows, [], idempotency_key=idempotency_key, source=f"template:{template_id}")


@redis_answers_503
async def place_batch(
    deps: OrderDeps,
    caller: Caller,
    rows: list[Row],
    rejected: list[Rejected],
    *,
    idempotency_key: str | None = None,
    source: str = "upload",
    coupon_code: str | None = None,
) -> dict[str, Any]:
    """Price and hold every row, write the batch, its orders and its one payment request in one
    transaction, and wait briefly for the wallet's answer. A declined payment is 402."""
    batch_id = batch_id_for(caller.user_id, idempotency_key)
    if idempotency_key is not None:
        existing = await deps.store.batch(batch_id)
        if existing is not None:
            refuse_if_declined(existing)
            return existing
    rejected = list(rejected)
    priced = []
    for row in rows:
        body = OrderRequest(sku_id=row.sku_id, quantity=row.quantity, recipient=row.recipient)
        try:
            sku, q = await price(deps, caller, body, with_stock=False)
        except Problem as problem:
            rejected.append(Rejected(row.number, _reason(problem)))
            continue
        if sku.trial:
            # One per person is claimed where a single order is placed; a sheet is not the place.
            rejected.append(Rejected(row.number, "sku_id: a free trial is ordered on its own, not in a batch"))
            continue
        priced.append((row, sku, q, new_id()))
    coupon_row = await _apply_coupon(deps, caller, priced, coupon_code) if coupon_code else None

    async def hold(entry: tuple[Any, ...]) -> bool:
        row, sku, _, order_id = entry
        try:
            await hold_stock(deps, sku, order_id, row.quantity)
        except Problem as problem:
            rejected.append(Rejected(row.number, _reason(problem)))
            return False
        return True

    held_flags = await asyncio.gather(*(hold(e) for e in priced))
    orders = [
        build_order(
            deps,
            caller,
            sku,
            q,
            order_id=order_id,
            coupon_code=coupon_code if order_id == coupon_row else None,
            held=counts_stock(sku),
            batch_id=batch_id,
        )
        for (row, sku, q, order_id), ok in zip(priced, held_flags, strict=True)
        if ok
    ]
    total = sum(o["total_cents"] for o in orders)
    batch = {
        "_id": batch_id,
        "user_id": caller.user_id,
        "order_ids": [o["_id"] for o in orders],
        "total_cents": total,
        "status": BatchStatus.PENDING_PAYMENT.value if orders else BatchStatus.REJECTED.value,
        "rejected": [r.as_dict() for r in sorted(rejected, key=lambda r: r.row)],
        "source": source,
        "created_at": utcnow(),
    }

    async def write(tx: Tx) -> None:
        await deps.store.add_batch(tx, batch)
        if not orders:
            return
        await deps.store.add_orders(tx, orders)
        for order in orders:
            emit_placed(tx, order)
        with_coupon = next((o for o in orders if o["coupon_code"]), None)
        tx.emit(
            payment_request(
                batch_id, orders[0], f"批量下单 {len(orders)} orders", amount_cents=total, coupon_order=with_coupon
            )
        )

    await deps.watch.listening.wait()
    async with deps.watch.waiting(batch_id) as answer:
        try:
            await deps.uow.run(write)
        except Exception:
            for order in orders:
                if order["held"]:
                    await deps.inventory.release(order["sku_id"], order["_id"])
            raise
        if orders:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(answer), timeout=deps.settings.place_wait_seconds)
    stored = await deps.store.batch(batch_id) or batch
    refuse_if_declined(stored)
    return stored


async def _apply_coupon(deps: OrderDeps, caller: Caller, priced: list[Any], code: str) -> str:
    """Give the batch's coupon to the first row it applies to (its quote gets the discount): the
    id that row's order will have. 422 on `coupon_code` when it applies to none."""
    reason = UNKNOWN
    for i, (row, sku, q, order_id) in enumerate(priced):
        discount, reason_or_none = await coupon_for(deps, caller.user_id, sku, q.subtotal_cents, code)
        if reason_or_none is None:
            priced[i] = (row, sku, with_discount(q, discount), order_id)
            return str(order_id)
        reason = reason_or_none
    raise validation_problem([{"field": "coupon_code", "message": message(reason), "reason": reason}])


def _reason(problem: Problem) -> str:
    errors = (problem.extra or {}).get("errors") if isinstance(problem.extra, dict) else None
    if errors:
        return "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return str(problem.detail)


def refuse_if_declined(batch: dict[str, Any]) -> None:
    """A batch the wallet refused for a short balance answers 402, whenever it is asked for."""
    if batch.get("decline_reason") in ("insufficient-balance", "no-account"):
        raise Problem(
            402,
            "insufficient-balance",
            "Insufficient balance",
            f"the balance does not cover the batch total of {batch['total_cents']} cents",
            batch_id=batch["_id"],
            total_cents=batch["total_cents"],
        )


async def get_batch(deps: OrderDeps, user_id: str, batch_id: str) -> dict[str, Any]:
    batch = await deps.store.own_batch(user_id, batch_id)
    if batch is None:
        raise not_found("batch")
    refuse_if_declined(batch)
    return batch


# -- templates -----------------------------------------------------------------------------------


async def save_template(deps: OrderDeps, caller: Caller, name: str, rows: list[TemplateRow]) -> dict[str, Any]:
    doc = {
        "_id": new_id(),
        "user_id": caller.user_id,
        "name": name,
        "rows": [msgspec.to_builtins(r) for r in rows],
        "created_at": utcnow(),
    }
    await deps.store.add_template(doc)
    return doc


async def list_templates(deps: OrderDeps, user_id: str) -> list[dict[str, Any]]:
    return await deps.store.templates(user_id)


async def remove_template(deps: OrderDeps, user_id: str, template_id: str) -> None:
    if not await deps.store.drop_template(user_id, template_id):
        raise not_found("template")
