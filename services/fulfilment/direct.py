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

from litestar import Controller, Request, post

from services.fulfilment.deliveries import DELIVERIES, finish, recipient_account
from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.suppliers import SupplierResult, SupplierUnavailable
from shared.contracts.envelope import utcnow
from shared.errors import Problem, not_found
from shared.messaging.outbox import Tx
from shared.runtime import Runtime

log = logging.getLogger(__name__)


async def dispatch_forever(rt: Runtime) -> None:
    deps = rt.get(FulfilmentDeps)
    while True:
        try:
            await dispatch_once(rt, deps)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("direct top-up dispatch failed; trying again")
        deps.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(deps.wake.wait(), timeout=deps.settings.direct_dispatch_interval_seconds)


async def dispatch_once(rt: Runtime, deps: FulfilmentDeps) -> None:
    now = utcnow()
    deliveries = rt.mongo.db[DELIVERIES]
    due = (
        await deliveries.find({"mode": "direct", "status": "pending", "next_attempt_at": {"$lte": now}})
        .limit(50)
        .to_list(50)
    )
    await asyncio.gather(*(submit(rt, deps, d) for d in due))
    stale = (
        await deliveries.find({"mode": "direct", "status": "submitted", "poll_at": {"$lte": now}}).limit(50).to_list(50)
    )
    await asyncio.gather(*(poll(rt, deps, d) for d in stale))


async def submit(rt: Runtime, deps: FulfilmentDeps, delivery: dict[str, Any]) -> None:
    order_id = delivery["_id"]
    attempt = delivery["attempts"] + 1
    request_id = delivery.get("request_id") or f"{order_id}.{attempt}"
    amount = (delivery.get("face_value_cents") or 0) * delivery["quantity"]
    callback = f"{deps.settings.public_base_url.rstrip('/')}/api/v1/suppliers/{deps.supplier.name}/notify"
    deliveries = rt.mongo.db[DELIVERIES]
    # Remember the request id before sending, so a crash after sending repeats the same id.
    await deliveries.update_one({"_id": order_id, "status": "pending"}, {"$set": {"request_id": request_id}})
    try:
        result = await deps.supplier.submit(request_id, recipient_account(delivery["recipient"]), amount, callback)
    except SupplierUnavailable as exc:
        log.warning("supplier unavailable for %s (%s); retrying the same request", request_id, exc)
        await deliveries.update_one(
            {"_id": order_id, "status": "pending"},
            {"$set": {"next_attempt_at": utcnow() + timedelta(seconds=deps.settings.direct_retry_backoff_seconds)}},
        )
        return
    poll_at = utcnow() + timedelta(seconds=deps.settings.direct_poll_after_seconds)
    await deliveries.update_one(
        {"_id": order_id, "status": "pending", "request_id": request_id},
        {
            "$set": {
                "status": "submitted",
                "supplier_ref": result.supplier_ref,
                "submitted_at": utcnow(),
                "poll_at": poll_at,
                "attempts": attempt,
            }
        },
    )
    if result.status != "processing":
        await apply_result(rt, deps, result)


async def poll(rt: Runtime, deps: FulfilmentDeps, delivery: dict[str, Any]) -> None:
    try:
        result = await deps.supplier.query(delivery["request_id"])
    except SupplierUnavailable as exc:
        log.warning("cannot ask the supplier about %s: %s", delivery["request_id"], exc)
        result = None
    if result is None or result.status == "processing":
        await rt.mongo.db[DELIVERIES].update_one(
            {"_id": delivery["_id"], "status": "submitted"},
            {"$set": {"poll_at": utcnow() + timedelta(seconds=deps.settings.direct_poll_after_seconds)}},
        )
        return
    await apply_result(rt, deps, result)


async def apply_result(rt: Runtime, deps: FulfilmentDeps, result: SupplierResult) -> str:
    """Apply a final supplier outcome once (callback, poll, or both: whichever comes first)."""
    if result.status == "processing":
        return "processing"
    order_id = result.request_id.rsplit(".", 1)[0]

    async def run(tx: Tx) -> str:
        current = await tx.db[DELIVERIES].find_one({"_id": order_id}, session=tx.session)
        if current is None:
            return "unknown"
        if current.get("status") != "submitted" or current.get("request_id") != result.request_id:
            return "stale"  # an older attempt, or already applied
        if result.status == "succeeded":
            await finish(
                tx, order_id, succeeded=True, expect=("submitted",), fields={"supplier_ref": result.supplier_ref}
            )
            return "succeeded"
        if current["attempts"] < deps.settings.direct_max_attempts:
            backoff = deps.settings.direct_retry_backoff_seconds * 2 ** (current["attempts"] - 1)
            await tx.db[DELIVERIES].update_one(
                {"_id": order_id, "status": "submitted"},
                {
                    "$set": {
                        "status": "pending",
                        "next_attempt_at": utcnow() + timedelta(seconds=backoff),
                        "last_failure": result.reason,
                    },
                    "$unset": {"request_id": "", "poll_at": ""},
                },
                session=tx.session,
            )
            return "retrying"
        await finish(
            tx,
            order_id,
            succeeded=False,
            expect=("submitted",),
            reason=f"supplier failed after {current['attempts']} attempts: {result.reason or 'no reason'}",
        )
        return "failed"

    outcome: str = await rt.uow.run(run)
    if outcome == "retrying":
        deps.wake.set()
    log.info("supplier result %s for %s: %s", result.status, result.request_id, outcome)
    return outcome


class SupplierCallbackController(Controller):
    path = "/api/v1/suppliers"
    tags = ["suppliers"]

    @post("/{supplier:str}/notify", status_code=200, summary="A supplier's signed top-up result")
    async def notify(self, runtime: Runtime, request: Request[Any, Any, Any], supplier: str) -> dict[str, str]:
        deps = runtime.get(FulfilmentDeps)
        if supplier != deps.supplier.name:
            raise not_found("supplier")
        body = await request.body()
        result = deps.supplier.verify_callback(body, request.headers.get("x-supplier-signature", ""))
        if result is None:
            log.warning("rejected a supplier callback with a bad signature")
            raise Problem(401, "bad-signature", "Bad signature", "the callback's signature does not verify")
        outcome = await apply_result(runtime, deps, result)
        if outcome == "unknown":
            raise not_found("top-up request")
        return {"result": outcome}
