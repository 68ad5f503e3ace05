"""Agents' money over HTTP: the agent's commissions and withdrawals (`/api/v1/agent/...`, role
agent) and staff's withdrawal queue (`/api/v1/admin/withdrawals`). Thin controllers over
`usecases/agents.py`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.params import JSONBody

from services.wallet.deps import WalletDeps
from services.wallet.domain import WithdrawalStatus
from services.wallet.usecases import agents
from shared.auth import AGENT, STAFF, Caller
from shared.idempotency import IdempotencyHeader, idempotency_key
from shared.paging import Page, Paging

MAX_WITHDRAWAL_CENTS = 100_000_000


class WithdrawalRequest(msgspec.Struct, forbid_unknown_fields=True):
    amount_cents: Annotated[int, msgspec.Meta(ge=1, le=MAX_WITHDRAWAL_CENTS)]


class WithdrawalDecision(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class CommissionView(msgspec.Struct, kw_only=True):
    order_id: str
    site: str | None
    amount_cents: int
    status: str
    credited_at: datetime
    available_at: datetime
    released_at: datetime | None = None
    reversed_at: datetime | None = None


class CommissionsPage(msgspec.Struct, kw_only=True):
    """A page of the agent's commissions and the agent's balances."""

    items: list[CommissionView]
    page: int
    page_size: int
    total: int
    available_cents: int
    pending_cents: int
    withdrawing_cents: int
    paid_cents: int


class WithdrawalView(msgspec.Struct, kw_only=True):
    withdrawal_id: str
    agent_id: str
    amount_cents: int
    status: str
    created_at: datetime
    decided_at: datetime | None = None
    reason: str | None = None


def commission_view(doc: dict[str, Any]) -> CommissionView:
    return CommissionView(
        order_id=doc["_id"],
        site=doc.get("site"),
        amount_cents=doc["amount_cents"],
        status=doc["status"],
        credited_at=doc["credited_at"],
        available_at=doc["available_at"],
        released_at=doc.get("released_at"),
        reversed_at=doc.get("reversed_at"),
    )


def withdrawal_view(doc: dict[str, Any]) -> WithdrawalView:
    return WithdrawalView(
        withdrawal_id=doc["_id"],
        agent_id=doc["agent_id"],
        amount_cents=doc["amount_cents"],
        status=doc["status"],
        created_at=doc["created_at"],
        decided_at=doc.get("decided_at"),
        reason=doc.get("reason"),
    )


class AgentMoneyController(Controller):
    path = "/api/v1/agent"
    tags = ["agents"]
    guards = [AGENT]

    @get("/commissions", summary="My commissions (pending until the after-sales window closes) and balances")
    async def commissions(self, deps: WalletDeps, caller: Caller, paging: Paging) -> CommissionsPage:
        docs, total, balance = await agents.commissions(deps, caller.user_id, paging)
        return CommissionsPage(
            items=[commission_view(d) for d in docs],
            page=paging.page,
            page_size=paging.page_size,
            total=total,
            available_cents=balance["available_cents"],
            pending_cents=balance["pending_cents"],
            withdrawing_cents=balance["withdrawing_cents"],
            paid_cents=balance["paid_cents"],
        )

    @post(
        "/withdrawals",
        summary="Withdraw (提现) up to the available commission; staff pay or reject it",
        description="409 insufficient-available when the amount is more than available.",
    )
    async def withdraw(
        self, deps: WalletDeps, caller: Caller, data: JSONBody[WithdrawalRequest], key: IdempotencyHeader = None
    ) -> WithdrawalView:
        return withdrawal_view(await agents.request_withdrawal(deps, caller, data.amount_cents, idempotency_key(key)))

    @get("/withdrawals", summary="My withdrawals, newest first")
    async def my_withdrawals(self, deps: WalletDeps, caller: Caller, paging: Paging) -> Page[WithdrawalView]:
        docs, total = await agents.withdrawals(deps, agent_id=caller.user_id, status=None, paging=paging)
        return paging.of([withdrawal_view(d) for d in docs], total)


class AdminWithdrawalsController(Controller):
    path = "/api/v1/admin/withdrawals"
    tags = ["agents"]
    guards = [STAFF]

    @get("/", summary="Agents' withdrawals (?status=pending|paid|rejected), newest first")
    async def list_withdrawals(
        self, deps: WalletDeps, paging: Paging, status: str | None = None
    ) -> Page[WithdrawalView]:
        docs, total = await agents.withdrawals(deps, agent_id=None, status=status, paging=paging)
        return paging.of([withdrawal_view(d) for d in docs], total)

    @post("/{withdrawal_id:str}/approve", status_code=200, summary="Pay a withdrawal (once)")
    async def approve(self, deps: WalletDeps, caller: Caller, withdrawal_id: str) -> WithdrawalView:
        return withdrawal_view(await agents.decide_withdrawal(deps, caller, withdrawal_id, WithdrawalStatus.PAID))

    @post("/{withdrawal_id:str}/reject", status_code=200, summary="Reject a withdrawal: the money is available again")
    async def reject(
        self, deps: WalletDeps, caller: Caller, withdrawal_id: str, data: JSONBody[WithdrawalDecision | None] = None
    ) -> WithdrawalView:
        reason = data.reason if data else ""
        return withdrawal_view(
            await agents.decide_withdrawal(deps, caller, withdrawal_id, WithdrawalStatus.REJECTED, reason)
        )
