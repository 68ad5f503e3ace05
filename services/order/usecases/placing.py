"""Quoting and placing orders: the hot path of a flash sale, written for few round trips.

Placing an order costs: the SKU from memory (refreshed every `sku_cache_seconds`), one Lua call
to hold stock in Redis, one MongoDB transaction (the order plus three outbox records), then a
short wait for the wallet's answer over the status channel. With an Idempotency-Key the order id
is derived from (buyer, key), so a retried request finds its order (one read) instead of making
a second one; the request's fingerprint is kept on the order to tell a retry from a reused key.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import msgspec
from pymongo.errors import DuplicateKeyError

from services.order import metrics
from services.order.deps import OrderDeps
from services.order.domain import (
    Buyer,
    Quote,
    Status,
    at_unit_price,
    coupon_discount,
    order_eta_seconds,
    payment_deadline,
    quote,
    with_discount,
)
from services.order.schemas import OrderRequest
from services.order.usecases import eta, sites
from services.order.usecases.outage import counters_rebuilding, redis_answers_503
from services.order.usecases.saga import status_changed
from services.order.usecases.upkeep import rebuild_sku_holds
from shared import coupons as shared_coupons
from shared import edge_cache
from shared.auth import Caller
from shared.contracts.catalog import SkuChanged
from shared.contracts.envelope import new_id, utcnow
from shared.contracts.order import OrderPlaced, PaymentRequested
from shared.errors import Problem, unknown_reference, validation_problem
from shared.idempotency import key_reused
from shared.inventory import EPOCH_HELD, EPOCH_SUPPLY, HoldResult
from shared.messaging.outbox import Tx
from shared.telemetry import current_trace_id

log = logging.getLogger(__name__)


def order_id_for(user_id: str, idempotency_key: str | None) -> str:
    """A fresh id, or the one id a buyer's Idempotency-Key stands for.

    Not `shared.idempotency.derived_id`: that one hashes a scope too, and the ids of orders placed
    before it existed must stay findable by their key, so this derivation never changes."""
    if idempotency_key is None:
        return new_id()
    return hashlib.sha256(f"{user_id}\n{idempotency_key}".encode()).hexdigest()[:32]


def request_fingerprint(body: OrderRequest) -> str:
    """What a request asked for, as stored on its order (`request_fingerprint`); kept as it was,
    so a retry of an order placed before an upgrade is still recognised as the same request."""
    canonical = msgspec.json.encode(
        {
            "sku_id": body.sku_id,
            "quantity": body.quantity,
            "recipient": dict(sorted(body.recipient.items())),
            "coupon_code": body.coupon_code,
            "pay_with": body.pay_with,
            # Only provider orders name a channel: balance orders keep the fingerprint they had.
            **({"channel": body.channel} if body.pay_with == "provider" else {}),
        }
    )
    return hashlib.sha256(canonical).hexdigest()


async def price(
    deps: OrderDeps, caller: Caller, body: OrderRequest, *, with_stock: bool, site: dict[str, Any] | None = None
) -> tuple[SkuChanged, Quote]:
    """The quote for a request, or a 422 problem naming every field that is wrong. On a sub-site
    (`site`) the unit price is the site's, for every buyer and quantity."""
    if body.quantity < 1 or body.quantity > deps.settings.max_quantity_per_order:
        raise validation_problem(
            [{"field": "quantity", "message": f"must be between 1 and {deps.settings.max_quantity_per_order}"}]
        )
    sku = await deps.skus.get(body.sku_id) or await deps.skus.wait_for(body.sku_id, deps.settings.sku_wait_seconds)
    if sku is None:
        raise unknown_reference([{"field": "sku_id", "message": "no such product"}])
    verified = False
    if sku.requires_real_name:
        verified = await deps.store.buyer_verified(caller.user_id)
    bought = 0
    if sku.max_per_user is not None:
        bought = await deps.store.units_counting_against_limit(caller.user_id, sku.sku_id)
    sellable = None
    if with_stock and counts_stock(sku):
        sellable = (await deps.inventory.stock(sku.sku_id)).sellable
    q = quote(
        sku,
        Buyer(caller.user_id, caller.level, verified, bought),
        body.quantity,
        body.recipient,
        sellable=sellable,
        low_stock=deps.settings.low_stock_threshold,
    )
    if site is not None:
        q = at_unit_price(q, sites.unit_price_on(site, sku))
    errors = [e.as_dict() for e in q.errors]
    if sku.trial:
        errors += await trial_problems(deps, caller.user_id, sku, body.quantity, verified)
    if body.pay_with == "provider" and body.channel is None:
        errors.append({"field": "channel", "message": "alipay or wechat, to pay through the provider"})
    if body.coupon_code is not None:
        discount, reason = await coupon_for(deps, caller.user_id, sku, q.subtotal_cents, body.coupon_code)
        if reason is not None:
            errors.append({"field": "coupon_code", "message": shared_coupons.message(reason), "reason": reason})
        else:
            q = with_discount(q, discount)
    if errors:
        raise validation_problem(errors)
    return sku, q


async def person_of(deps: OrderDeps, user_id: str) -> str:
    """Who a verified account belongs to (identity's person fingerprint); an account verified
    before fingerprints existed counts as its own person."""
    return await deps.store.buyer_person(user_id) or f"account:{user_id}"


async def trial_problems(
    deps: OrderDeps, user_id: str, sku: SkuChanged, quantity: int, verified: bool
) -> list[dict[str, str]]:
    """免费体验: one unit, once per verified person across all their accounts (real name
    required: `requires_real_name` is set for trials, so the quote names that already)."""
    problems = []
    if quantity != 1:
        problems.append({"field": "quantity", "message": "a free trial is one unit"})
    if verified and await deps.store.trial_taken(sku.sku_id, await person_of(deps, user_id)):
        problems.append({"field": "sku_id", "message": "you have had this free trial already (one per person)"})
    return problems


async def coupon_for(
    deps: OrderDeps, user_id: str, sku: SkuChanged, subtotal_cents: int, code: str
) -> tuple[int, str | None]:
    """The discount of the buyer's coupon on this order, from the projection of the wallet's
    coupons (a preview: the wallet holds the coupon when the order is placed and refuses one that
    another order took meanwhile)."""
    coupon = await deps.store.coupon(code)
    if coupon is None:
        return 0, shared_coupons.UNKNOWN
    return coupon_discount(
        coupon,
        granted=await deps.store.coupon_granted(user_id, code),
        in_use=await deps.store.coupon_in_use(user_id, code),
        sku_id=sku.sku_id,
        category_id=sku.category_id,
        subtotal_cents=subtotal_cents,
        paid_orders=await deps.store.paid_orders(user_id) if coupon.first_order_only else 0,
        now=utcnow(),
    )


@redis_answers_503
async def quote_order(
    deps: OrderDeps, caller: Caller, body: OrderRequest, site: str | None = None
) -> tuple[SkuChanged, Quote]:
    """The preview (信息预览): price, cleaned recipient with notes, and stock warnings."""
    return await price(deps, caller, body, with_stock=True, site=await sites.site_named(deps, site))


@redis_answers_503
async def place_order(
    deps: OrderDeps, caller: Caller, body: OrderRequest, idempotency_key: str | None, site: str | None = None
) -> dict[str, Any]:
    """Create the order (or find the one this Idempotency-Key made) and wait briefly for payment.
    A payment the wallet declined is the problem the buyer gets (402 or 409). Placed on a
    sub-site (`site`, a slug), it is that site's order, at its price."""
    order = await _place(deps, caller, body, idempotency_key, site)
    refuse_if_declined(order)
    return order


async def _place(
    deps: OrderDeps, caller: Caller, body: OrderRequest, idempotency_key: str | None, site_slug: str | None = None
) -> dict[str, Any]:
    order_id = order_id_for(caller.user_id, idempotency_key)
    fingerprint = request_fingerprint(body)
    if idempotency_key is not None:
        existing = await deps.store.order(order_id)
        if existing is not None:
            return _replay(existing, fingerprint)
    site = await sites.site_named(deps, site_slug)
    sku, q = await price(deps, caller, body, with_stock=False, site=site)

    held = await hold_stock(deps, sku, order_id, body.quantity, edge=None if site else refusal_varies(sku, body))
    staff_eta, observed_eta = await eta.eta_of(deps, sku)
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
        pay_with=body.pay_with,
        channel=body.channel if body.pay_with == "provider" else None,
    )
    order.update(sites.stamp(site, sku, q.unit_price_cents, q.quantity))
    order["eta_seconds"] = order_eta_seconds(staff_eta, observed_eta)

    person = await person_of(deps, caller.user_id) if sku.trial else None

    async def write(tx: Tx) -> None:
        await deps.store.add_order(tx, order)
        if person is not None:
            try:
                await deps.store.claim_trial(tx, sku.sku_id, person, order_id, caller.user_id)
            except DuplicateKeyError:
                raise validation_problem(
                    [{"field": "sku_id", "message": "you have had this free trial already (one per person)"}]
                ) from None
        emit_placed(tx, order)
        tx.emit(payment_request(order_id, order, f"{sku.product_name} {sku.name} x{body.quantity}"))

    await deps.watch.listening.wait()
    async with deps.watch.waiting(order_id) as answer:
        try:
            await deps.uow.run(write)
        except Exception as exc:
            if isinstance(exc, DuplicateKeyError) and idempotency_key is not None:
                # The same key raced us: that request owns the order and its hold.
                existing = await deps.store.order(order_id)
                if existing is not None:
                    return _replay(existing, fingerprint)
            if held:
                await deps.inventory.release(sku.sku_id, order_id)
            raise
        try:
            await asyncio.wait_for(asyncio.shield(answer), timeout=deps.settings.place_wait_seconds)
        except TimeoutError:
            log.info("order %s: no payment answer within %.1fs", order_id, deps.settings.place_wait_seconds)
    current = await deps.store.order(order_id, history=False)
    return current or order


def counts_stock(sku: SkuChanged) -> bool:
    """Only single card keys are counted: a reusable key (循环卡密) is never sold out while on
    sale, and direct and manual SKUs are delivered by a supplier or staff."""
    return sku.delivery_mode == "auto" and sku.key_mode != "reusable"


def refusal_varies(sku: SkuChanged, body: OrderRequest) -> bool:
    """Whether an out-of-stock refusal of this request is the caller's own: when a rule about the
    buyer (real name, a per-buyer limit, a trial, their coupon) was checked before the stock, the
    same body from another buyer may be refused for another reason first."""
    return sku.requires_real_name or sku.max_per_user is not None or sku.trial or body.coupon_code is not None


REFUSAL_MAX_AGE_SECONDS = 1.0
"""How long the gateway may keep an out-of-stock refusal while its counters read the same: it also
rests on this replica's copy of the SKU, which an admin's edit reaches a moment later (a switch
to reusable keys or to direct delivery would let the same order through)."""


async def hold_stock(
    deps: OrderDeps, sku: SkuChanged, order_id: str, quantity: int, *, edge: bool | None = None
) -> bool:
    """Hold card-key stock for an auto-delivery order (409 when short). Direct and manual SKUs
    are not counted in Redis: a supplier or staff delivers them.

    `edge`: the refusal may be kept by the gateway (Decision 35), for the caller alone when True;
    None: it may not (an order on a sub-site, a row of a batch). It is kept against the counters
    the hold script refused on, as that script read them: any hold, release, sale or import of
    the SKU moves one and sends the next request here again."""
    if not counts_stock(sku):
        return False
    hold = await deps.inventory.hold(sku.sku_id, order_id, quantity)
    if hold.missing == "held" and await deps.inventory.epoch_known(EPOCH_HELD):
        await rebuild_sku_holds(deps, sku.sku_id)  # new to this Redis: counted from its orders now
        hold = await deps.inventory.hold(sku.sku_id, order_id, quantity)
    if hold.missing == "supply" and (epoch := await deps.inventory.epoch(EPOCH_SUPPLY)) is not None:
        # The vault built every counter: none means no keys yet (until the marker goes with a
        # Redis that lost its data, or the first import creates the counter).
        hold = HoldResult(ok=False, units=0, seen=(*hold.seen, (EPOCH_SUPPLY, epoch)))
    if hold.missing is not None:
        raise counters_rebuilding()  # Redis lost its counters; their owners are rebuilding them
    if not hold.ok:
        available = max(hold.units, 0)
        declared = (
            edge_cache.declare(hold.seen, vary_caller=edge, max_age_seconds=REFUSAL_MAX_AGE_SECONDS)
            if edge is not None and hold.seen
            else None
        )
        raise Problem(
            409,
            "out-of-stock",
            "Out of stock",
            f"only {available} left of {sku.name}",
            headers=declared,
            available=available,
        )
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
    pay_with: str = "balance",
    channel: str | None = None,
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
        "trial": sku.trial,
        "validity_days": sku.validity_days,
        "status": Status.PENDING_PAYMENT.value,
        "history": [{"status": Status.PENDING_PAYMENT.value, "at": now}],
        # Staff open the order's whole saga from the console by this id (Decision 23).
        "trace_id": current_trace_id(),
        "created_at": now,
        "updated_at": now,
        "expires_at": payment_deadline(now, deps.settings.payment_timeout_minutes),
        "held": held,
        "idempotency_key": idempotency_key,
        "request_fingerprint": fingerprint,
        "batch_id": batch_id,
        "pay_with": pay_with,
        "channel": channel,
        "pay_url": None,
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
            site=order.get("site"),
        )
    )
    tx.emit(status_changed(order, Status.PENDING_PAYMENT, None, None))
    tx.after_commit(lambda: metrics.placed(order))


def payment_request(
    payment_id: str,
    order: dict[str, Any],
    description: str,
    amount_cents: int | None = None,
    coupon_order: dict[str, Any] | None = None,
) -> PaymentRequested:
    """`payment_id` is the order id, or a batch id when one payment covers a whole batch (then
    `coupon_order` is the batch's order that carries the coupon, if one does)."""
    with_coupon = order if coupon_order is None else coupon_order
    return PaymentRequested(
        order_id=payment_id,
        user_id=order["user_id"],
        amount_cents=order["total_cents"] if amount_cents is None else amount_cents,
        coupon_code=with_coupon.get("coupon_code"),
        coupon_order_id=None if coupon_order is None else coupon_order["_id"],
        sku_id=order["sku_id"],
        category_id=order["category_id"],
        description=description,
        method=order.get("pay_with") or "balance",
        channel=order.get("channel"),
    )


def _replay(existing: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    if existing.get("request_fingerprint") != fingerprint:
        raise key_reused()
    return existing


def refuse_if_declined(order: dict[str, Any]) -> None:
    """A declined payment is the answer to placing: 402 for a short balance, 409 otherwise."""
    if order["status"] != Status.CANCELLED.value or not order.get("decline_reason"):
        return
    reason = order["decline_reason"]
    if reason == "coupon-unavailable":
        raise Problem(
            409,
            "coupon-unavailable",
            "Coupon unavailable",
            f"coupon {order.get('coupon_code')} is held or used by another order; order again without it",
            order_id=order["_id"],
            coupon_code=order.get("coupon_code"),
        )
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
