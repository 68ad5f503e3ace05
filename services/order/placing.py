"""Quoting and placing orders: the hot path of a flash sale, written for few round trips.

Placing an order costs: the SKU from memory (refreshed every `sku_cache_seconds`), one Lua call
to hold stock in Redis, one MongoDB transaction (the order plus three outbox records), then a
short wait for the wallet's answer over the status channel. With an Idempotency-Key the order id
is derived from (buyer, key), so a retried request finds its order (one read) instead of making
a second one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any, Literal

import msgspec
from pymongo.errors import DuplicateKeyError

from services.order.domain import Buyer, Quote, Status, payment_deadline, quote
from services.order.saga import OrderDeps, status_changed
from services.order.store import BUYERS, ORDERS, SKUS, sku_from_doc, units_counting_against_limit
from shared.auth import Caller
from shared.contracts.catalog import SkuChanged
from shared.contracts.envelope import new_id, utcnow
from shared.contracts.order import OrderPlaced, PaymentRequested
from shared.errors import Problem, validation_problem
from shared.messaging.outbox import Tx
from shared.runtime import Runtime

log = logging.getLogger(__name__)


class OrderRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    sku_id: str
    quantity: int = 1
    recipient: dict[str, str] = {}
    coupon_code: str | None = None
    pay_with: Literal["balance"] = "balance"


class SkuCache:
    """SKU projections kept in memory for a moment: a thousand buyers of one SKU read it once."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[str, tuple[float, SkuChanged | None]] = {}

    async def get(self, db: Any, sku_id: str) -> SkuChanged | None:
        now = time.monotonic()
        hit = self._entries.get(sku_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        doc = await db[SKUS].find_one({"_id": sku_id})
        sku = sku_from_doc(doc) if doc else None
        self._entries[sku_id] = (now + self.ttl, sku)
        return sku

    def forget(self, sku_id: str) -> None:
        self._entries.pop(sku_id, None)


def order_id_for(user_id: str, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return new_id()
    return hashlib.sha256(f"{user_id}\n{idempotency_key}".encode()).hexdigest()[:32]


def request_fingerprint(body: OrderRequest) -> str:
    canonical = msgspec.json.encode(
        {
            "sku_id": body.sku_id,
            "quantity": body.quantity,
            "recipient": dict(sorted(body.recipient.items())),
            "coupon_code": body.coupon_code,
            "pay_with": body.pay_with,
        }
    )
    return hashlib.sha256(canonical).hexdigest()


async def price(
    rt: Runtime, deps: OrderDeps, caller: Caller, body: OrderRequest, *, with_stock: bool
) -> tuple[SkuChanged, Quote]:
    """The quote for a request, or a 422 problem naming every field that is wrong."""
    if body.quantity < 1 or body.quantity > deps.settings.max_quantity_per_order:
        raise validation_problem(
            [{"field": "quantity", "message": f"must be between 1 and {deps.settings.max_quantity_per_order}"}]
        )
    sku = await deps.skus.get(rt.mongo.db, body.sku_id)
    if sku is None:
        raise validation_problem([{"field": "sku_id", "message": "no such product"}])
    verified = False
    if sku.requires_real_name:
        buyer_doc = await rt.mongo.db[BUYERS].find_one({"_id": caller.user_id})
        verified = bool(buyer_doc and buyer_doc.get("real_name_verified"))
    bought = 0
    if sku.max_per_user is not None:
        bought = await units_counting_against_limit(rt.mongo.db, caller.user_id, sku.sku_id)
    sellable = None
    if with_stock and sku.delivery_mode == "auto":
        sellable = (await deps.inventory.stock(sku.sku_id)).sellable
    discount, coupon_error = deps.coupons(caller, sku, body)
    q = quote(
        sku,
        Buyer(caller.user_id, caller.level, verified, bought),
        body.quantity,
        body.recipient,
        discount_cents=discount,
        sellable=sellable,
        low_stock=deps.settings.low_stock_threshold,
    )
    errors = [e.as_dict() for e in q.errors]
    if coupon_error:
        errors.append({"field": "coupon_code", "message": coupon_error})
    if errors:
        raise validation_problem(errors)
    return sku, q


async def place(
    rt: Runtime, deps: OrderDeps, caller: Caller, body: OrderRequest, idempotency_key: str | None
) -> dict[str, Any]:
    """Create the order (or find the one this Idempotency-Key made) and wait briefly for payment."""
    order_id = order_id_for(caller.user_id, idempotency_key)
    fingerprint = request_fingerprint(body)
    if idempotency_key is not None:
        existing = await rt.mongo.db[ORDERS].find_one({"_id": order_id})
        if existing is not None:
            return _replay(existing, fingerprint)
    sku, q = await price(rt, deps, caller, body, with_stock=False)

    held = await hold_stock(deps, sku, order_id, body.quantity)
    order = build_order(
        deps,
        caller,
        sku,
        q,
        order_id=order_id,
        coupon_code=body.coupon_code,
        held=held,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )

    async def write(tx: Tx) -> None:
        await tx.db[ORDERS].insert_one(order, session=tx.session)
        emit_placed(tx, order)
        tx.emit(payment_request(order_id, order, f"{sku.product_name} {sku.name} x{body.quantity}"))

    await deps.watch.listening.wait()
    async with deps.watch.waiting(order_id) as answer:
        try:
            await rt.uow.run(write)
        except Exception as exc:
            if isinstance(exc, DuplicateKeyError) and idempotency_key is not None:
                # The same key raced us: that request owns the order and its hold.
                existing = await rt.mongo.db[ORDERS].find_one({"_id": order_id})
                if existing is not None:
                    return _replay(existing, fingerprint)
            if held:
                await deps.inventory.release(sku.sku_id, order_id)
            raise
        try:
            await asyncio.wait_for(asyncio.shield(answer), timeout=deps.settings.place_wait_seconds)
        except TimeoutError:
            log.info("order %s: no payment answer within %.1fs", order_id, deps.settings.place_wait_seconds)
    current = await rt.mongo.db[ORDERS].find_one({"_id": order_id}, {"history": 0})
    return current or order


async def hold_stock(deps: OrderDeps, sku: SkuChanged, order_id: str, quantity: int) -> bool:
    """Hold card-key stock for an auto-delivery order (409 when short). Direct and manual SKUs
    are not counted in Redis: a supplier or staff delivers them."""
    if sku.delivery_mode != "auto":
        return False
    hold = await deps.inventory.hold(sku.sku_id, order_id, quantity)
    if not hold.ok:
        available = max(hold.units, 0)
        raise Problem(409, "out-of-stock", "Out of stock", f"only {available} left of {sku.name}", available=available)
    return True


def build_order(
    deps: OrderDeps,
    caller: Caller,
    sku: SkuChanged,
    q: Quote,
    *,
    order_id: str,
    coupon_code: str | None,
    held: bool,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
    batch_id: str | None = None,
) -> dict[str, Any]:
    now = utcnow()
    return {
        "_id": order_id,
        "user_id": caller.user_id,
        "sku_id": sku.sku_id,
        "sku_name": sku.name,
        "product_name": sku.product_name,
        "face_value_cents": sku.face_value_cents,
        "category_id": sku.category_id,
        "quantity": q.quantity,
        "unit_price_cents": q.unit_price_cents,
        "subtotal_cents": q.subtotal_cents,
        "discount_cents": q.discount_cents,
        "total_cents": q.total_cents,
        "coupon_code": coupon_code,
        "recipient": q.recipient,
        "delivery_mode": sku.delivery_mode,
        "validity_days": sku.validity_days,
        "status": Status.PENDING_PAYMENT.value,
        "history": [{"status": Status.PENDING_PAYMENT.value, "at": now}],
        "created_at": now,
        "updated_at": now,
        "expires_at": payment_deadline(now, deps.settings.payment_timeout_minutes),
        "held": held,
        "idempotency_key": idempotency_key,
        "request_fingerprint": fingerprint,
        "batch_id": batch_id,
        "partner_key_id": caller.api_key_id,
        "version": 1,
    }


def emit_placed(tx: Tx, order: dict[str, Any]) -> None:
    tx.emit(
        OrderPlaced(
            order_id=order["_id"],
            user_id=order["user_id"],
            sku_id=order["sku_id"],
            quantity=order["quantity"],
            unit_price_cents=order["unit_price_cents"],
            discount_cents=order["discount_cents"],
            total_cents=order["total_cents"],
            coupon_code=order["coupon_code"],
            delivery_mode=order["delivery_mode"],
            category_id=order["category_id"],
            expires_at=order["expires_at"],
            batch_id=order.get("batch_id"),
            partner_key_id=order.get("partner_key_id"),
        )
    )
    tx.emit(status_changed(order, Status.PENDING_PAYMENT, None, None))


def payment_request(
    payment_id: str, order: dict[str, Any], description: str, amount_cents: int | None = None
) -> PaymentRequested:
    """`payment_id` is the order id, or a batch id when one payment covers a whole batch."""
    return PaymentRequested(
        order_id=payment_id,
        user_id=order["user_id"],
        amount_cents=order["total_cents"] if amount_cents is None else amount_cents,
        coupon_code=order["coupon_code"],
        sku_id=order["sku_id"],
        category_id=order["category_id"],
        description=description,
    )


def _replay(existing: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    if existing.get("request_fingerprint") != fingerprint:
        raise Problem(
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was used for a different request",
        )
    return existing


def placement_outcome(order: dict[str, Any]) -> dict[str, Any]:
    """The 201 body, or the problem a declined payment turns into."""
    if order["status"] == Status.CANCELLED.value and order.get("decline_reason"):
        reason = order["decline_reason"]
        if reason in ("insufficient-balance", "no-account"):
            raise Problem(
                402,
                "insufficient-balance",
                "Insufficient balance",
                f"the balance does not cover {order['total_cents']} cents; top up and order again",
                order_id=order["_id"],
                total_cents=order["total_cents"],
            )
        raise Problem(409, reason, "Payment declined", f"payment declined: {reason}", order_id=order["_id"])
    return {
        "order_id": order["_id"],
        "status": order["status"],
        "total_cents": order["total_cents"],
        "unit_price_cents": order["unit_price_cents"],
        "discount_cents": order["discount_cents"],
        "quantity": order["quantity"],
        "sku_id": order["sku_id"],
        "expires_at": order["expires_at"],
    }
