"""Scheduled orders (自动充值): "每月固定给家人充话费". A subscription places one order per run,
paid from the balance, through the same placing path as a buyer's POST /orders.

Exactly one order per run, however often the scheduler runs a subscription: each run's order
uses the Idempotency-Key `subscription:{id}:{run}`, so its order id is derived from (buyer, key)
(`placing.order_id_for`). A second scheduler that runs the same run, or this one after a crash
between placing and recording, finds that order instead of placing another. The run is recorded
(and the subscription moved to the next one) by a guarded update on the run number, in the same
transaction as the failure event, so the owner is told once per failed run.

A run's outcome is its order's: paid → ok; cancelled (the wallet declined: short balance) or
expired → failed; still unpaid (the wallet has not answered yet) → the run stays open and the
next tick looks again. A run refused before any order exists (sold out, the SKU gone, real name
needed) fails at once. A failed run is not retried: the next run comes at its time.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.order.deps import OrderDeps
from services.order.domain import MAX_SUBSCRIPTIONS, Status, next_run_at, run_outcome, schedule_errors
from services.order.schemas import OrderRequest, SubscriptionIn
from services.order.usecases import placing
from shared.auth import Caller
from shared.contracts.envelope import new_id, utcnow
from shared.contracts.order import SubscriptionRunFailed
from shared.errors import Problem, not_found, validation_problem
from shared.idempotency import derived_id, fingerprint, key_reused
from shared.messaging.outbox import Tx
from shared.paging import Paging
from shared.runtime import Runtime

log = logging.getLogger(__name__)

RUN_LEASE = timedelta(minutes=2)
"""How long a scheduler owns a due run: longer than placing takes (PLACE_WAIT_SECONDS)."""
DUE_PER_TICK = 100


def run_key(subscription_id: str, run: int) -> str:
    """The Idempotency-Key of a run's order (the contract's `subscription:{id}:{run}`)."""
    return f"subscription:{subscription_id}:{run}"


async def create(deps: OrderDeps, caller: Caller, body: SubscriptionIn, idempotency_key: str | None) -> dict[str, Any]:
    """Check the order it would place (SKU, quantity, recipient, real name) and the schedule;
    422 naming each bad field. A repeated Idempotency-Key returns the same subscription."""
    errors = [e.as_dict() for e in schedule_errors(body.every, body.day, body.hour)]
    if errors:
        raise validation_problem(errors)
    fp = fingerprint(body)
    sub_id = derived_id("subscription", caller.user_id, idempotency_key) if idempotency_key else None
    if sub_id is not None and (existing := await deps.store.own_subscription(caller.user_id, sub_id)):
        return _replay(existing, fp)
    await placing.price(deps, caller, order_request(body.sku_id, body.quantity, body.recipient), with_stock=False)
    if await deps.store.active_subscriptions(caller.user_id) >= MAX_SUBSCRIPTIONS:
        raise Problem(
            422, "too-many-subscriptions", "Too many subscriptions", f"at most {MAX_SUBSCRIPTIONS} active ones"
        )
    now = utcnow()
    doc: dict[str, Any] = {
        "_id": sub_id or new_id(),
        "user_id": caller.user_id,
        # Runs are priced at the level the buyer had when subscribing (the scheduler has no
        # token); a level change applies to subscriptions made after it.
        "level": caller.level,
        "sku_id": body.sku_id,
        "quantity": body.quantity,
        "recipient": body.recipient,
        "every": body.every,
        "day": body.day,
        "hour": body.hour,
        "status": "active",
        "created_at": now,
        "next_run_at": next_run_at(
            body.every, body.day, body.hour, now, period_seconds=deps.settings.subscription_period_seconds
        ),
        "run": 1,
        "runs": [],
        "last_run": None,
        "failures": 0,
        "lease_until": now,
        "request_fingerprint": fp,
    }
    try:
        await deps.store.add_subscription(doc)
    except DuplicateKeyError:
        existing = await deps.store.own_subscription(caller.user_id, doc["_id"])
        if existing is None:
            raise
        return _replay(existing, fp)
    return doc


def _replay(existing: dict[str, Any], fp: str) -> dict[str, Any]:
    if existing.get("request_fingerprint") != fp:
        raise key_reused()
    return existing


def order_request(sku_id: str, quantity: int, recipient: dict[str, str]) -> OrderRequest:
    return OrderRequest(sku_id=sku_id, quantity=quantity, recipient=recipient, pay_with="balance")


async def list_own(deps: OrderDeps, user_id: str, paging: Paging) -> tuple[list[dict[str, Any]], int]:
    return await deps.store.subscriptions_of(user_id, skip=paging.skip, limit=paging.limit)


async def get_own(deps: OrderDeps, user_id: str, subscription_id: str) -> dict[str, Any]:
    doc = await deps.store.own_subscription(user_id, subscription_id)
    if doc is None:
        raise not_found("subscription")
    return doc


async def cancel(deps: OrderDeps, user_id: str, subscription_id: str) -> None:
    """Stop future runs (a run already placing finishes). Someone else's is 404; a second
    DELETE of one's own is 204 again."""
    if not await deps.store.end_subscription(user_id, subscription_id, utcnow()):
        await get_own(deps, user_id, subscription_id)


# -- the scheduler ---------------------------------------------------------------------------


async def run_due(deps: OrderDeps, limit: int = DUE_PER_TICK) -> int:
    """Run every due subscription once (each claimed for RUN_LEASE); how many were run."""
    done = 0
    while done < limit:
        now = utcnow()
        sub = await deps.store.claim_due_subscription(now, now + RUN_LEASE)
        if sub is None:
            break
        try:
            await run_one(deps, sub)
        except Exception:
            # The lease keeps this one from being retried at once; the others still run.
            log.exception("subscription %s run %s failed; trying again later", sub["_id"], sub["run"])
        done += 1
    return done


async def run_one(deps: OrderDeps, sub: dict[str, Any]) -> str | None:
    """Place (or find) this run's order and record the run; its outcome, or None while the
    order waits for the wallet."""
    run = int(sub["run"])
    caller = Caller(user_id=sub["user_id"], level=sub.get("level") or "retail")
    body = order_request(sub["sku_id"], sub["quantity"], sub["recipient"])
    order_id: str | None = placing.order_id_for(sub["user_id"], run_key(sub["_id"], run))
    try:
        order = await placing.place_order(deps, caller, body, run_key(sub["_id"], run))
    except Problem as problem:
        # 402/409 name the order they cancelled; a 409 out-of-stock or a 422 placed none.
        extra = problem.extra if isinstance(problem.extra, dict) else {}
        order_id = extra.get("order_id") or (order_id if await deps.store.order(order_id or "") else None)
        reason: str | None = problem.slug
        detail = str(problem.detail)
        outcome = "failed"
    else:
        reason, detail = None, ""
        found = run_outcome(Status(order["status"]))
        if found is None:
            await deps.store.look_again(
                sub["_id"], run, utcnow() + timedelta(seconds=deps.settings.subscription_tick_seconds)
            )
            return None
        outcome = found
        if outcome == "failed":
            reason, detail = order["status"], f"the order was {order['status']}"
    await record_run(deps, sub, run, outcome=outcome, order_id=order_id, reason=reason, detail=detail)
    return outcome


async def record_run(
    deps: OrderDeps,
    sub: dict[str, Any],
    run: int,
    *,
    outcome: str,
    order_id: str | None,
    reason: str | None,
    detail: str,
) -> bool:
    now = utcnow()
    s = deps.settings
    following = next_run_at(sub["every"], sub["day"], sub["hour"], now, period_seconds=s.subscription_period_seconds)
    entry = {"run": run, "at": now, "outcome": outcome, "order_id": order_id, "reason": reason, "detail": detail}

    async def write(tx: Tx) -> bool:
        if not await deps.store.finish_run(tx, sub["_id"], run, entry, following):
            return False  # another scheduler recorded this run
        if outcome != "ok":
            tx.emit(
                SubscriptionRunFailed(
                    subscription_id=sub["_id"],
                    user_id=sub["user_id"],
                    run=run,
                    sku_id=sub["sku_id"],
                    quantity=sub["quantity"],
                    reason=reason or "failed",
                    detail=detail[:300],
                    order_id=order_id,
                    next_run_at=following,
                )
            )
        return True

    recorded: bool = await deps.uow.run(write)
    return recorded


async def schedule_forever(rt: Runtime) -> None:
    """The scheduler: run what is due every `SUBSCRIPTION_TICK_SECONDS`. A failed tick is logged
    and tried again rather than restarting the loop with a growing backoff."""
    deps: OrderDeps = rt.deps
    while True:
        try:
            await run_due(deps)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("subscription tick failed; trying again")
        await asyncio.sleep(deps.settings.subscription_tick_seconds)
