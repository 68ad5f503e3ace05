"""The wallet's agent use cases (commissions, withdrawals) against in-memory fakes: a commission
is credited once per order, released once, reversed once from wherever it is; a withdrawal never
takes more than is available; a decision is made once. Every movement is a balanced pair and the
agent's buckets always equal the sums of their ledger accounts. The real database: the e2e test."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

import pytest

from services.wallet.agents_store import EMPTY_BALANCE, AgentStore
from services.wallet.deps import WalletDeps
from services.wallet.domain import COMMISSION, WITHDRAWAL, CommissionStatus, WithdrawalStatus
from services.wallet.settings import WalletSettings
from services.wallet.usecases import agents
from shared.auth import Caller
from shared.contracts.envelope import utcnow
from shared.contracts.order import OrderStatusChanged
from shared.errors import Problem
from shared.messaging.outbox import Tx
from shared.paging import Paging
from tests.unit.test_wallet_usecases import FakeProvider, FakeStore, FakeUnitOfWork

Doc = dict[str, Any]
AGENT = Caller(user_id="agent-1", roles=("agent",), level="agent")
STAFF = Caller(user_id="staff-1", roles=("staff",))


class FakeAgentStore(AgentStore):
    """The agent store's contract over dicts kept ON the fake wallet store, so the fake unit of
    work's rollback covers them too."""

    def __init__(self, wallet: FakeStore) -> None:
        super().__init__(cast(Any, None))
        self.wallet = wallet
        for name in ("agent_balances", "commissions", "withdrawals"):
            wallet.__dict__.setdefault(name, {})

    def _t(self, name: str) -> dict[str, Doc]:
        table: dict[str, Doc] = self.wallet.__dict__[name]
        return table

    async def balance(self, agent_id: str) -> Doc:
        return {**EMPTY_BALANCE, **self._t("agent_balances").get(agent_id, {}), "_id": agent_id}

    async def move_balance(self, tx: Tx, agent_id: str, inc: dict[str, int], *, covers: Doc | None = None) -> bool:
        current = self._t("agent_balances").get(agent_id)
        if covers and (current is None or any(current[k] < v for k, v in covers.items())):
            return False
        doc = self._t("agent_balances").setdefault(agent_id, dict(EMPTY_BALANCE))
        for k, v in inc.items():
            doc[k] += v
        return True

    async def commission(self, tx: Tx, order_id: str) -> Doc | None:
        return self._t("commissions").get(order_id)

    async def add_commission(self, tx: Tx, doc: Doc) -> None:
        self._t("commissions")[doc["_id"]] = dict(doc)

    async def move_commission(self, tx: Tx, order_id: str, target: CommissionStatus, fields: Doc) -> Doc | None:
        doc = self._t("commissions").get(order_id)
        if doc is None or doc["status"] not in COMMISSION.sources(target):
            return None
        before = dict(doc)
        doc.update(status=target.value, **fields)
        return before

    async def due_commissions(self, now: datetime, limit: int = 200) -> list[str]:
        return [k for k, c in self._t("commissions").items() if c["status"] == "pending" and c["available_at"] <= now]

    async def withdrawal(self, withdrawal_id: str, tx: Tx | None = None) -> Doc | None:
        return self._t("withdrawals").get(withdrawal_id)

    async def add_withdrawal(self, tx: Tx, doc: Doc) -> None:
        self._t("withdrawals")[doc["_id"]] = dict(doc)

    async def move_withdrawal(self, tx: Tx, withdrawal_id: str, target: WithdrawalStatus, fields: Doc) -> Doc | None:
        doc = self._t("withdrawals").get(withdrawal_id)
        if doc is None or doc["status"] not in WITHDRAWAL.sources(target):
            return None
        doc.update(status=target.value, **fields)
        return dict(doc)

    async def withdrawals_page(
        self, *, agent_id: str | None, status: str | None, skip: int, limit: int
    ) -> tuple[list[Doc], int]:
        found = [
            w
            for w in self._t("withdrawals").values()
            if (agent_id is None or w["agent_id"] == agent_id) and (status is None or w["status"] == status)
        ]
        return found[skip : skip + limit], len(found)


class World:
    def __init__(self, hold_seconds: float = 3600) -> None:
        self.store = FakeStore()
        self.uow = FakeUnitOfWork(self.store)
        self.agents = FakeAgentStore(self.store)
        settings = WalletSettings(agent_commission_hold_seconds=hold_seconds)
        self.deps = WalletDeps(
            settings=settings, store=self.store, provider=FakeProvider(), uow=self.uow, agents=self.agents
        )

    def delivered(self, order_id: str, commission: int, status: str = "delivered") -> OrderStatusChanged:
        return OrderStatusChanged(
            order_id=order_id,
            user_id="buyer-1",
            status=status,
            previous_status=None,
            sku_id="s1",
            quantity=1,
            total_cents=911,
            at=utcnow(),
            site="shop",
            agent_id=AGENT.user_id,
            commission_cents=commission,
        )

    async def apply(self, event: OrderStatusChanged) -> bool:
        if event.status == "delivered":
            return await self.uow.run(lambda tx: agents.credit_commission(tx, self.deps, event))
        return await self.uow.run(lambda tx: agents.reverse_commission(tx, self.deps, event.order_id))

    async def balance(self) -> Doc:
        return await self.agents.balance(AGENT.user_id)

    def check_books(self) -> None:
        """Every movement sums to zero; each agent bucket equals its ledger account's sum."""
        assert sum(e["amount_cents"] for e in self.store.ledger) == 0
        balance = self.store.__dict__["agent_balances"].get(AGENT.user_id, EMPTY_BALANCE)
        for bucket in ("pending", "available", "withdrawing"):
            account = f"agent:{AGENT.user_id}:{bucket}"
            assert sum(e["amount_cents"] for e in self.store.ledger if e["account"] == account) == balance.get(
                f"{bucket}_cents", 0
            )


async def test_a_commission_is_credited_once_released_once_and_reversed_once() -> None:
    w = World(hold_seconds=0)
    assert await w.apply(w.delivered("o1", 178))
    assert not await w.apply(w.delivered("o1", 178))  # a second delivered event (re-issue)
    assert (await w.balance())["pending_cents"] == 178
    assert await agents.release_due(w.deps) == 1
    assert await agents.release_due(w.deps) == 0
    assert ((await w.balance())["available_cents"], (await w.balance())["pending_cents"]) == (178, 0)
    refunded = w.delivered("o1", 178, status="refunded")
    assert await w.apply(refunded)
    assert not await w.apply(refunded)
    assert (await w.balance())["available_cents"] == 0
    w.check_books()


async def test_a_refund_inside_the_window_reverses_from_pending_and_nothing_is_released() -> None:
    w = World(hold_seconds=3600)
    await w.apply(w.delivered("o2", 50))
    assert await w.apply(w.delivered("o2", 50, status="refunded"))
    w.store.__dict__["commissions"]["o2"]["available_at"] = utcnow() - timedelta(seconds=1)
    assert await agents.release_due(w.deps) == 0
    assert ((await w.balance())["pending_cents"], (await w.balance())["available_cents"]) == (0, 0)
    w.check_books()


async def test_orders_without_a_commission_move_nothing() -> None:
    w = World()
    assert not await w.apply(w.delivered("o3", 0))
    assert not await w.apply(w.delivered("o4", 10, status="refunded"))  # never credited
    assert w.store.ledger == []


async def test_withdrawals_take_at_most_what_is_available_and_are_decided_once() -> None:
    w = World(hold_seconds=0)
    await w.apply(w.delivered("o5", 300))
    await agents.release_due(w.deps)
    with pytest.raises(Problem) as short:
        await agents.request_withdrawal(w.deps, AGENT, 301, None)
    assert short.value.status_code == 409
    first = await agents.request_withdrawal(w.deps, AGENT, 300, None)
    with pytest.raises(Problem):
        await agents.request_withdrawal(w.deps, AGENT, 300, None)  # the second of two for everything
    rejected = await agents.decide_withdrawal(w.deps, STAFF, first["_id"], WithdrawalStatus.REJECTED, "wrong bank")
    assert rejected["status"] == "rejected" and (await w.balance())["available_cents"] == 300
    with pytest.raises(Problem):
        await agents.decide_withdrawal(w.deps, STAFF, first["_id"], WithdrawalStatus.PAID)
    second = await agents.request_withdrawal(w.deps, AGENT, 300, "key-1")
    assert (await agents.request_withdrawal(w.deps, AGENT, 300, "key-1"))["_id"] == second["_id"]  # a retry
    for _ in range(2):
        paid = await agents.decide_withdrawal(w.deps, STAFF, second["_id"], WithdrawalStatus.PAID)
        assert paid["status"] == "paid"
    balance = await w.balance()
    assert (balance["available_cents"], balance["withdrawing_cents"], balance["paid_cents"]) == (0, 0, 300)
    assert len([e for e in w.store.ledger if e["kind"] == "withdrawal-paid"]) == 2  # one pair
    w.check_books()
    docs, total = await agents.withdrawals(w.deps, agent_id=AGENT.user_id, status=None, paging=Paging())
    assert total == 2 and {d["status"] for d in docs} == {"rejected", "paid"}


async def test_a_reversal_after_a_withdrawal_leaves_the_agent_owing() -> None:
    w = World(hold_seconds=0)
    await w.apply(w.delivered("o6", 100))
    await agents.release_due(w.deps)
    await agents.request_withdrawal(w.deps, AGENT, 100, None)
    await w.apply(w.delivered("o6", 100, status="refunded"))
    assert (await w.balance())["available_cents"] == -100
    w.check_books()
