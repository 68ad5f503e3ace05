"""Direct top-ups (直充): send paid orders to the supplier, learn the outcome by callback or by
polling, retry failures with backoff, and give up (so the order is refunded) after the last try.

Attempt n of an order uses request id `<order id>.<n>`. A network error repeats the SAME request
id (the supplier treats it as one request, so a top-up that did arrive is not made twice); only a
definite failure from the supplier starts a new attempt with a new id. Results for an attempt that
is no longer the current one are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.domain import DeliveryStatus, direct_request_id, order_of_request, recipient_account
from services.fulfilment.suppliers import SupplierResult, SupplierUnavailable
from services.fulfilment.usecases.delivery import finish
from shared.contracts.envelope import utcnow
from shared.errors import Problem, not_found
from shared.messaging.outbox import Tx
from shared.runtime import Runtime

log = logging.getLogger(__name__)


async def dispatch_forever(rt: Runtime) -> None:
    """Background loop: a round when woken (a new top-up, a retry) or every dispatch interval."""
    deps: FulfilmentDeps = rt.deps
    while True:
        try:
            await dispatch_once(deps)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("direct top-up dispatch failed; trying again")
        deps.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(deps.wake.wait(), timeout=deps.settings.direct_dispatch_interval_seconds)


async def dispatch_once(deps: FulfilmentDeps) -> None:
    now = utcnow()
    due = await deps.store.due_direct(now)
    await asyncio.gather(*(submit(deps, d) for d in due))
    stale = await deps.store.stale_direct(now)
    await asyncio.gather(*(poll(deps, d) for d in stale))


async def submit(deps: FulfilmentDeps, delivery: dict[str, Any]) -> None:
    order_id = delivery["_id"]
    attempt = delivery["attempts"] + 1
    request_id = delivery.get("request_id") or direct_request_id(order_id, attempt)
    amount = (delivery.get("face_value_cents") or 0) * delivery["quantity"]
    callback = f"{deps.settings.public_base_url.rstrip('/')}/api/v1/suppliers/{deps.supplier.name}/notify"
    store = deps.store
    # Remember the request id before sending, so a crash after sending repeats the same id.
    await store.annotate_delivery(order_id, DeliveryStatus.PENDING, {"request_id": request_id})
    try:
        result = await deps.supplier.submit(request_id, recipient_account(delivery["recipient"]), amount, callback)
    except SupplierUnavailable as exc:
        log.warning("supplier unavailable for %s (%s); retrying the same request", request_id, exc)
        retry_at = utcnow() + timedelta(seconds=deps.settings.direct_retry_backoff_seconds)
        await store.annotate_delivery(order_id, DeliveryStatus.PENDING, {"next_attempt_at": retry_at})
        return
    poll_at = utcnow() + timedelta(seconds=deps.settings.direct_poll_after_seconds)
    await store.move_delivery(
        None,
        order_id,
        DeliveryStatus.SUBMITTED,
        also={"request_id": request_id},
        set_={"supplier_ref": result.supplier_ref, "submitted_at": utcnow(), "poll_at": poll_at, "attempts": attempt},
    )
    if result.status != "processing":
        await apply_result(deps, result)


async def poll(deps: FulfilmentDeps, delivery: dict[str, Any]) -> None:
    try:
        result: SupplierResult | None = await deps.supplier.query(delivery["request_id"])
    except SupplierUnavailable as exc:
        log.warning("cannot ask the supplier about %s: %s", delivery["request_id"], exc)
        result = None
    if result is None or result.status == "processing":
        poll_at = utcnow() + timedelta(seconds=deps.settings.direct_poll_after_seconds)
        await deps.store.annotate_delivery(delivery["_id"], DeliveryStatus.SUBMITTED, {"poll_at": poll_at})
        return
    await apply_result(deps, result)


async def apply_result(deps: FulfilmentDeps, result: SupplierResult) -> str:
    """Apply a final supplier outcome once (callback, poll, or both: whichever comes first)."""
    if result.status == "processing":
        return "processing"
    order_id = order_of_request(result.request_id)
    store = deps.store

    async def run(tx: Tx) -> str:
        current = await store.get_delivery(order_id, tx=tx)
        if current is None:
            return "unknown"
        if current.get("status") != DeliveryStatus.SUBMITTED or current.get("request_id") != result.request_id:
            return "stale"  # an older attempt, or already applied
        if result.status == "succeeded":
            await finish(
                tx,
                store,
                order_id,
                succeeded=True,
                only_from=DeliveryStatus.SUBMITTED,
                fields={"supplier_ref": result.supplier_ref},
            )
            return "succeeded"
        if current["attempts"] < deps.settings.direct_max_attempts:
            backoff = deps.settings.direct_retry_backoff_seconds * 2 ** (current["attempts"] - 1)
            await store.move_delivery(
                tx,
                order_id,
                DeliveryStatus.PENDING,
                only_from=DeliveryStatus.SUBMITTED,
                set_={"next_attempt_at": utcnow() + timedelta(seconds=backoff), "last_failure": result.reason},
                unset=("request_id", "poll_at"),
            )
            return "retrying"
        await finish(
            tx,
            store,
            order_id,
            succeeded=False,
            only_from=DeliveryStatus.SUBMITTED,
            reason=f"supplier failed after {current['attempts']} attempts: {result.reason or 'no reason'}",
        )
        return "failed"

    outcome: str = await deps.uow.run(run)
    if outcome == "retrying":
        deps.wake.set()
    log.info("supplier result %s for %s: %s", result.status, result.request_id, outcome)
    return outcome


async def accept_callback(deps: FulfilmentDeps, supplier: str, body: bytes, signature: str) -> str:
    """A supplier's signed result for a top-up: applied once, whether it comes before or after a poll."""
    if supplier != deps.supplier.name:
        raise not_found("supplier")
    result = deps.supplier.verify_callback(body, signature)
    if result is None:
        log.warning("rejected a supplier callback with a bad signature")
        raise Problem(401, "bad-signature", "Bad signature", "the callback's signature does not verify")
    outcome = await apply_result(deps, result)
    if outcome == "unknown":
        raise not_found("top-up request")
    return outcome
