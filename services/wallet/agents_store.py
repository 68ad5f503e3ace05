"""The wallet's MongoDB calls for agents' money (database `kameng_wallet`):

- `agent_balances` one per agent: `pending_cents` (commissions inside the after-sales window),
                   `available_cents` (withdrawable; may go below zero when a commission is
                   reversed after it was withdrawn: the agent owes it to later commissions),
                   `withdrawing_cents` (requested, not yet decided), `paid_cents` (paid out).
- `commissions`    one per sub-site order (`_id` = order id): `agent_id`, `site`, `amount_cents`,
                   status (`domain.COMMISSION`: pending -> available, pending | available -> reversed),
                   `available_at` (when the after-sales window closes).
- `withdrawals`    withdrawal requests (提现): `agent_id`, `amount_cents`, status
                   (`domain.WITHDRAWAL`: pending -> paid | rejected).

Every change of a balance is a guarded `$inc` in the same transaction as its ledger entries
(`WalletStore.book`, whose unique keys make each movement happen once)."""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument

from services.wallet.domain import COMMISSION, WITHDRAWAL, CommissionStatus, WithdrawalStatus
from services.wallet.store import Db, Doc
from shared.messaging.outbox import Tx
from shared.mongo import Index

BALANCES = "agent_balances"
COMMISSIONS = "commissions"
WITHDRAWALS = "withdrawals"

AGENT_INDEXES: list[Index] = [
    Index(COMMISSIONS, [("agent_id", 1), ("credited_at", -1)]),
    Index(COMMISSIONS, [("status", 1), ("available_at", 1)]),
    Index(WITHDRAWALS, [("status", 1), ("created_at", -1)]),
    Index(WITHDRAWALS, [("agent_id", 1), ("created_at", -1)]),
]

EMPTY_BALANCE = {"pending_cents": 0, "available_cents": 0, "withdrawing_cents": 0, "paid_cents": 0}


class AgentStore:
    def __init__(self, db: Db) -> None:
        self.db = db

    # -- balances ---------------------------------------------------------------------------------

    async def balance(self, agent_id: str) -> Doc:
        doc: Doc | None = await self.db[BALANCES].find_one({"_id": agent_id})
        return {**EMPTY_BALANCE, **(doc or {}), "_id": agent_id}

    async def move_balance(self, tx: Tx, agent_id: str, inc: dict[str, int], *, covers: Doc | None = None) -> bool:
        """`$inc` the agent's buckets; with `covers` ({bucket: cents}) only if each bucket holds
        at least that much (False then, nothing changed). The balance is created on first use."""
        guard: Doc = {"_id": agent_id, **{bucket: {"$gte": cents} for bucket, cents in (covers or {}).items()}}
        if covers:
            doc = await tx.db[BALANCES].find_one_and_update(
                guard, {"$inc": inc}, return_document=ReturnDocument.AFTER, session=tx.session
            )
            return doc is not None
        await tx.db[BALANCES].update_one(
            {"_id": agent_id},
            {"$inc": inc, "$setOnInsert": {k: 0 for k in EMPTY_BALANCE if k not in inc}},
            upsert=True,
            session=tx.session,
        )
        return True

    # -- commissions ------------------------------------------------------------------------------

    async def commission(self, tx: Tx, order_id: str) -> Doc | None:
        doc: Doc | None = await tx.db[COMMISSIONS].find_one({"_id": order_id}, session=tx.session)
        return doc

    async def add_commission(self, tx: Tx, doc: Doc) -> None:
        await tx.db[COMMISSIONS].insert_one(doc, session=tx.session)

    async def move_commission(self, tx: Tx, order_id: str, target: CommissionStatus, fields: Doc) -> Doc | None:
        """Status change allowed by `domain.COMMISSION`, once: the commission BEFORE, or None."""
        doc: Doc | None = await tx.db[COMMISSIONS].find_one_and_update(
            {"_id": order_id, **COMMISSION.guard(target)},
            {"$set": {"status": target.value, **fields}},
            return_document=ReturnDocument.BEFORE,
            session=tx.session,
        )
        return doc

    async def due_commissions(self, now: datetime, limit: int = 200) -> list[str]:
        cursor = (
            self.db[COMMISSIONS]
            .find({"status": CommissionStatus.PENDING.value, "available_at": {"$lte": now}}, {"_id": 1})
            .limit(limit)
        )
        return [d["_id"] async for d in cursor]

    async def commissions_page(self, agent_id: str, skip: int, limit: int) -> tuple[list[Doc], int]:
        query = {"agent_id": agent_id}
        cursor = self.db[COMMISSIONS].find(query).sort([("credited_at", -1), ("_id", 1)]).skip(skip).limit(limit)
        return [d async for d in cursor], await self.db[COMMISSIONS].count_documents(query)

    # -- withdrawals ------------------------------------------------------------------------------

    async def withdrawal(self, withdrawal_id: str, tx: Tx | None = None) -> Doc | None:
        db, session = (tx.db, tx.session) if tx is not None else (self.db, None)
        doc: Doc | None = await db[WITHDRAWALS].find_one({"_id": withdrawal_id}, session=session)
        return doc

    async def add_withdrawal(self, tx: Tx, doc: Doc) -> None:
        """DuplicateKeyError when the id (derived from an Idempotency-Key) exists."""
        await tx.db[WITHDRAWALS].insert_one(doc, session=tx.session)

    async def move_withdrawal(self, tx: Tx, withdrawal_id: str, target: WithdrawalStatus, fields: Doc) -> Doc | None:
        """Pending -> paid | rejected, once: the withdrawal AFTER, or None when not pending."""
        doc: Doc | None = await tx.db[WITHDRAWALS].find_one_and_update(
            {"_id": withdrawal_id, **WITHDRAWAL.guard(target)},
            {"$set": {"status": target.value, **fields}},
            return_document=ReturnDocument.AFTER,
            session=tx.session,
        )
        return doc

    async def withdrawals_page(
        self, *, agent_id: str | None, status: str | None, skip: int, limit: int
    ) -> tuple[list[Doc], int]:
        query: Doc = {**({"agent_id": agent_id} if agent_id else {}), **({"status": status} if status else {})}
        cursor = self.db[WITHDRAWALS].find(query).sort([("created_at", -1), ("_id", 1)]).skip(skip).limit(limit)
        return [d async for d in cursor], await self.db[WITHDRAWALS].count_documents(query)
