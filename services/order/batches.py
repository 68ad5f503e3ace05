"""Batch orders (批量下单) and saved templates (模板).

A batch turns each valid row into an order, and pays for all of them in ONE wallet payment whose
id is the batch id: the buyer pays the batch total once, or not at all. Rows that cannot be
ordered are reported by row number and do not stop the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any

import msgspec

from services.order.domain import Status
from services.order.placing import (
    OrderRequest,
    build_order,
    emit_placed,
    hold_stock,
    payment_request,
    price,
)
from services.order.saga import OrderDeps, move, payment_captured
from services.order.sheets import Rejected, Row
from services.order.store import ORDERS
from shared.auth import Caller
from shared.contracts.envelope import new_id, utcnow
from shared.errors import Problem
from shared.messaging.outbox import Tx
from shared.runtime import Runtime

BATCHES = "batches"
TEMPLATES = "templates"
BATCH_PREFIX = "B"


def is_batch(payment_id: str) -> bool:
    return payment_id.startswith(BATCH_PREFIX)


def batch_id_for(user_id: str, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return BATCH_PREFIX + new_id()
    return BATCH_PREFIX + hashlib.sha256(f"batch\n{user_id}\n{idempotency_key}".encode()).hexdigest()[:32]


class TemplateRow(msgspec.Struct, kw_only=True):
    sku_id: str
    quantity: int = 1
    recipient: dict[str, str] = {}


async def place_batch(
    rt: Runtime,
    deps: OrderDeps,
    caller: Caller,
    rows: list[Row],
    rejected: list[Rejected],
    *,
    idempotency_key: str | None = None,
    source: str = "upload",
) -> dict[str, Any]:
    batch_id = batch_id_for(caller.user_id, idempotency_key)
    if idempotency_key is not None:
        existing: dict[str, Any] | None = await rt.mongo.db[BATCHES].find_one({"_id": batch_id})
        if existing is not None:
            return existing
    rejected = list(rejected)
    priced = []
    for row in rows:
        body = OrderRequest(sku_id=row.sku_id, quantity=row.quantity, recipient=row.recipient)
        try:
            sku, q = await price(rt, deps, caller, body, with_stock=False)
        except Problem as problem:
            rejected.append(Rejected(row.number, _reason(problem)))
            continue
        priced.append((row, sku, q, new_id()))

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
            coupon_code=None,
            held=sku.delivery_mode == "auto",
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
        "status": Status.PENDING_PAYMENT.value if orders else "rejected",
        "rejected": [r.as_dict() for r in sorted(rejected, key=lambda r: r.row)],
        "source": source,
        "created_at": utcnow(),
    }

    async def write(tx: Tx) -> None:
        await tx.db[BATCHES].insert_one(batch, session=tx.session)
        if not orders:
            return
        await tx.db[ORDERS].insert_many(orders, session=tx.session)
        for order in orders:
            emit_placed(tx, order)
        tx.emit(payment_request(batch_id, orders[0], f"批量下单 {len(orders)} orders", amount_cents=total))

    await deps.watch.listening.wait()
    async with deps.watch.waiting(batch_id) as answer:
        try:
            await rt.uow.run(write)
        except Exception:
            for order in orders:
                if order["held"]:
                    await deps.inventory.release(order["sku_id"], order["_id"])
            raise
        if orders:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(answer), timeout=deps.settings.place_wait_seconds)
    stored: dict[str, Any] = await rt.mongo.db[BATCHES].find_one({"_id": batch_id}) or batch
    return stored


def _reason(problem: Problem) -> str:
    errors = (problem.extra or {}).get("errors") if isinstance(problem.extra, dict) else None
    if errors:
        return "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return str(problem.detail)


async def batch_paid(tx: Tx, deps: OrderDeps, batch_id: str) -> None:
    """The batch's one payment was captured: every order of it is paid (and delivered next)."""
    batch = await tx.db[BATCHES].find_one_and_update(
        {"_id": batch_id, "status": Status.PENDING_PAYMENT.value},
        {"$set": {"status": Status.PAID.value}},
        session=tx.session,
    )
    if batch is None:
        return
    for order_id in batch["order_ids"]:
        await payment_captured(tx, deps, order_id)
    tx.after_commit(lambda: deps.watch.publish(batch_id, Status.PAID.value))


async def batch_declined(tx: Tx, deps: OrderDeps, batch_id: str, reason: str) -> None:
    batch = await tx.db[BATCHES].find_one_and_update(
        {"_id": batch_id, "status": Status.PENDING_PAYMENT.value},
        {"$set": {"status": Status.CANCELLED.value, "decline_reason": reason}},
        session=tx.session,
    )
    if batch is None:
        return
    for order_id in batch["order_ids"]:
        await move(
            tx,
            deps,
            order_id,
            Status.CANCELLED,
            reason=f"payment declined: {reason}",
            fields={"decline_reason": reason},
        )
    tx.after_commit(lambda: deps.watch.publish(batch_id, Status.CANCELLED.value))
