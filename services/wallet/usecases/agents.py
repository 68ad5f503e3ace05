"""Agents' money (代理佣金 / 提现): commissions of sub-site orders and withdrawals.

- `order.status-changed` `delivered` with a commission: credit it once, pending until the
  after-sales window (`AGENT_COMMISSION_HOLD_SECONDS`) closes; the supervised loop
  `release_commissions` then makes it available. `refunded`: reverse it once, from whichever
  bucket holds it (pending, or available, which may then go below zero).
- A withdrawal moves an amount from available to withdrawing, only if available covers it (two
  requests for the whole amount: the second finds too little); staff pay it (withdrawing ->
  `platform:payouts`) or reject it (back to available), once.

Each movement is one transaction: the status change of the commission or withdrawal (guarded,
`domain.COMMISSION` / `domain.WITHDRAWAL`), the guarded `$inc` of the agent's balance and the
double-entry pair (`domain.agent_postings`, unique keys)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.wallet.agents_store import AgentStore
from services.wallet.deps import WalletDeps, deps_of_runtime
from services.wallet.domain import (
    AGENT_MOVEMENTS,
    CommissionStatus,
    WithdrawalStatus,
    agent_postings,
    balance_inc,
)
from shared.auth import Caller
from shared.contracts.envelope import new_id
from shared.contracts.order import OrderStatusChanged
from shared.errors import Problem, not_found
from shared.idempotency import derived_id, key_reused
from shared.messaging.outbox import Tx
from shared.paging import Paging
from shared.runtime import Runtime

log = logging.getLogger(__name__)
Doc = dict[str, Any]


def store_of(deps: WalletDeps) -> AgentStore:
    return deps.agents or AgentStore(deps.store.db)


async def _move(
    tx: Tx, deps: WalletDeps, kind: str, ref: str, agent_id: str, amount: int, source: str | None, target: str | None
) -> None:
    """Book one movement of an agent's money and change its balance to match."""
    now = datetime.now(UTC)
    await deps.store.book(tx, agent_postings(kind, ref, agent_id, source, target, amount, at=now))
    await store_of(deps).move_balance(tx, agent_id, balance_inc(source, target, amount))


# -- commissions ----------------------------------------------------------------------------------


async def credit_commission(tx: Tx, deps: WalletDeps, event: OrderStatusChanged) -> bool:
    """A delivered sub-site order: its commission, pending, once (a second delivered event for
    the order, e.g. after a re-issue, finds it booked)."""
    if event.agent_id is None or event.commission_cents <= 0:
        return False
    store = store_of(deps)
    if await store.commission(tx, event.order_id) is not None:
        return False
    now = datetime.now(UTC)
    await store.add_commission(
        tx,
        {
            "_id": event.order_id,
            "agent_id": event.agent_id,
            "site": event.site,
            "amount_cents": event.commission_cents,
            "status": CommissionStatus.PENDING.value,
            "credited_at": now,
            "available_at": now + timedelta(seconds=deps.settings.agent_commission_hold_seconds),
        },
    )
    await _move(
        tx, deps, "commission", event.order_id, event.agent_id, event.commission_cents, *AGENT_MOVEMENTS["commission"]
    )
    return True


async def reverse_commission(tx: Tx, deps: WalletDeps, order_id: str) -> bool:
    """A refunded order: its commission back to the platform, once, from pending or available."""
    before = await store_of(deps).move_commission(
        tx, order_id, CommissionStatus.REVERSED, {"reversed_at": datetime.now(UTC)}
    )
    if before is None:
        return False  # no commission on this order, or reversed already
    await _move(
        tx, deps, "commission-reversal", order_id, before["agent_id"], before["amount_cents"], before["status"], None
    )
    return True


async def release_commission(deps: WalletDeps, order_id: str) -> bool:
    """Pending -> available once its after-sales window has closed (a refund racing this wins or
    loses on the commission's guarded status; either way the money moves once)."""

    async def write(tx: Tx) -> bool:
        before = await store_of(deps).move_commission(
            tx, order_id, CommissionStatus.AVAILABLE, {"released_at": datetime.now(UTC)}
        )
        if before is None:
            return False
        source, target = AGENT_MOVEMENTS["commission-release"]
        await _move(
            tx, deps, "commission-release", order_id, before["agent_id"], before["amount_cents"], source, target
        )
        return True

    released: bool = await deps.uow.run(write)
    return released


async def release_due(deps: WalletDeps) -> int:
    released = 0
    for order_id in await store_of(deps).due_commissions(datetime.now(UTC)):
        released += await release_commission(deps, order_id)
    return released


async def release_commissions(rt: Runtime) -> None:
    """The wallet's background loop (`ServiceSpec.background`): commissions whose after-sales
    window closed become available. Every replica may run it; each release happens once."""
    deps = deps_of_runtime(rt)
    while True:
        await asyncio.sleep(deps.settings.agent_commission_sweep_seconds)
        if released := await release_due(deps):
            log.info("released %d commissions", released)


async def commissions(deps: WalletDeps, agent_id: str, paging: Paging) -> tuple[list[Doc], int, Doc]:
    store = store_of(deps)
    docs, total = await store.commissions_page(agent_id, paging.skip, paging.limit)
    return docs, total, await store.balance(agent_id)


# -- withdrawals ----------------------------------------------------------------------------------


def _short(amount: int, available: int) -> Problem:
    return Problem(
        409,
        "insufficient-available",
        "Not enough available",
        f"{amount} cents requested, {max(available, 0)} available",
        available_cents=max(available, 0),
    )


async def request_withdrawal(deps: WalletDeps, agent: Caller, amount_cents: int, key: str | None) -> Doc:
    """Move `amount_cents` from available to withdrawing (409 when available does not cover it).
    With an Idempotency-Key the withdrawal id derives from it: a retry answers the first one."""
    store = store_of(deps)
    withdrawal_id = derived_id("withdrawal", agent.user_id, key) if key else new_id()
    if key and (existing := await store.withdrawal(withdrawal_id)) is not None:
        return _same_request(existing, amount_cents)
    now = datetime.now(UTC)
    doc: Doc = {
        "_id": withdrawal_id,
        "agent_id": agent.user_id,
        "amount_cents": amount_cents,
        "status": WithdrawalStatus.PENDING.value,
        "created_at": now,
    }

    async def write(tx: Tx) -> Doc:
        source, target = AGENT_MOVEMENTS["withdrawal"]
        covered = await store.move_balance(
            tx, agent.user_id, balance_inc(source, target, amount_cents), covers={"available_cents": amount_cents}
        )
        if not covered:
            raise _short(amount_cents, (await store.balance(agent.user_id))["available_cents"])
        await store.add_withdrawal(tx, doc)
        await deps.store.book(
            tx,
            agent_postings("withdrawal", withdrawal_id, agent.user_id, source, target, amount_cents, at=now),
        )
        return doc

    try:
        result: Doc = await deps.uow.run(write)
    except DuplicateKeyError:
        existing = await store.withdrawal(withdrawal_id)
        if existing is None:
            raise
        return _same_request(existing, amount_cents)
    return result


def _same_request(existing: Doc, amount_cents: int) -> Doc:
    if existing["amount_cents"] != amount_cents:
        raise key_reused()
    return existing


async def decide_withdrawal(
    deps: WalletDeps, staff: Caller, withdrawal_id: str, target: WithdrawalStatus, reason: str = ""
) -> Doc:
    """Pay (withdrawing -> `platform:payouts`) or reject (back to available) once. The same
    decision again answers the withdrawal as it is; the other one is 409."""
    store = store_of(deps)

    async def write(tx: Tx) -> Doc | None:
        now = datetime.now(UTC)
        fields: Doc = {
            "decided_at": now,
            "decided_by": staff.user_id,
            **({"reason": reason} if reason else {}),
        }
        after = await store.move_withdrawal(tx, withdrawal_id, target, fields)
        if after is None:
            return None
        kind = "withdrawal-paid" if target is WithdrawalStatus.PAID else "withdrawal-returned"
        to_bucket = None if target is WithdrawalStatus.PAID else "available"
        await deps.store.book(
            tx,
            agent_postings(
                kind,
                withdrawal_id,
                after["agent_id"],
                "withdrawing",
                to_bucket,
                after["amount_cents"],
                at=now,
            ),
        )
        inc = balance_inc("withdrawing", to_bucket, after["amount_cents"])
        if to_bucket is None:
            inc["paid_cents"] = after["amount_cents"]
        await store.move_balance(tx, after["agent_id"], inc)
        return after

    decided: Doc | None = await deps.uow.run(write)
    if decided is not None:
        return decided
    current = await store.withdrawal(withdrawal_id)
    if current is None:
        raise not_found("withdrawal")
    if current["status"] != target.value:
        raise Problem(409, "withdrawal-decided", "Already decided", f"the withdrawal was {current['status']} already")
    return current


async def withdrawals(
    deps: WalletDeps, *, agent_id: str | None, status: str | None, paging: Paging
) -> tuple[list[Doc], int]:
    return await store_of(deps).withdrawals_page(agent_id=agent_id, status=status, skip=paging.skip, limit=paging.limit)
