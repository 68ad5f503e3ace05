"""The wallet's money movements against the real database, with real concurrency: many
transactions racing on one account (the e2e tests go through one consumer, which serialises
them), so the guarded update and the unique ledger keys are what keeps the money right."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.wallet import usecases as ledger
from services.wallet.settings import WalletSettings
from services.wallet.store import ACCOUNTS, INDEXES, LEDGER, TOPUPS
from shared.contracts.envelope import new_id, utcnow
from shared.contracts.order import PaymentRequested, RefundRequested
from shared.messaging.consumer import RejectEvent
from shared.messaging.outbox import OUTBOX, OUTBOX_INDEXES, Tx, UnitOfWork
from shared.mongo import Mongo, connect, ensure_indexes


@pytest.fixture
async def wallet_db(test_env: dict[str, str]) -> AsyncIterator[tuple[Mongo, UnitOfWork]]:
    settings = WalletSettings(mongodb_database=f"kameng_wallet_it_{new_id()[:8]}")
    mongo = connect(settings.mongodb_url, settings.database_name)
    await ensure_indexes(mongo.db, [*OUTBOX_INDEXES, *INDEXES])
    yield mongo, UnitOfWork(mongo, producer="wallet")
    await mongo.client.drop_database(settings.database_name)
    mongo.close()


async def open_and_fund(uow: UnitOfWork, user: str, amount_cents: int) -> None:
    topup_id = new_id()

    async def run(tx: Tx) -> Any:
        await ledger.open_account(tx, user)
        await tx.db[TOPUPS].insert_one(
            {
                "_id": topup_id,
                "user_id": user,
                "amount_cents": amount_cents,
                "channel": "bank",
                "status": "pending",
                "created_at": utcnow(),
            },
            session=tx.session,
        )
        return await ledger.credit_topup(tx, topup_id, points_per_yuan=1, via="test")

    assert await uow.run(run) is not None


def pay(user: str, amount: int, order_id: str | None = None) -> PaymentRequested:
    return PaymentRequested(
        order_id=order_id or new_id(), user_id=user, amount_cents=amount, sku_id="s", category_id="c"
    )


async def test_100_racing_debits_never_overdraw_and_every_movement_balances(
    wallet_db: tuple[Mongo, UnitOfWork],
) -> None:
    mongo, uow = wallet_db
    user = new_id()
    await open_and_fund(uow, user, 10000)
    payments = [pay(user, 370) for _ in range(100)]
    started = asyncio.get_running_loop().time()
    await asyncio.gather(*(uow.run(lambda tx, p=p: ledger.capture_payment(tx, p)) for p in payments))
    elapsed = asyncio.get_running_loop().time() - started

    account = await mongo.db[ACCOUNTS].find_one({"_id": user})
    assert account is not None
    assert account["balance_cents"] == 10000 - 27 * 370 == 10
    user_entries = await mongo.db[LEDGER].find({"account": user}).to_list(None)
    assert sum(e["amount_cents"] for e in user_entries) == account["balance_cents"]
    assert len([e for e in user_entries if e["kind"] == "payment"]) == 27
    everything = await mongo.db[LEDGER].find({}).to_list(None)
    assert sum(e["amount_cents"] for e in everything) == 0  # double entry: the books balance
    assert sum(e.get("points", 0) for e in everything) == 0
    by_txn: dict[str, int] = {}
    for e in everything:
        by_txn[e["txn"]] = by_txn.get(e["txn"], 0) + e["amount_cents"]
    assert set(by_txn.values()) == {0}  # ... and so does every single movement
    revenue = sum(e["amount_cents"] for e in everything if e["account"] == "platform:revenue")
    assert revenue == 27 * 370
    answers = (
        await mongo.db[OUTBOX]
        .find({"type": {"$in": ["wallet.payment-captured", "wallet.payment-declined"]}})
        .to_list(None)
    )
    assert sorted(a["type"] for a in answers).count("wallet.payment-captured") == 27
    assert len(answers) == 100
    print(f"100 racing debits committed in {elapsed:.1f}s")


async def test_racing_duplicates_of_one_payment_and_one_refund_apply_once(
    wallet_db: tuple[Mongo, UnitOfWork],
) -> None:
    mongo, uow = wallet_db
    user = new_id()
    await open_and_fund(uow, user, 5000)
    p = pay(user, 1200)
    # Distinct event ids (the inbox cannot help): only the ledger key keeps it to one debit.
    await asyncio.gather(*(uow.run(lambda tx: ledger.capture_payment(tx, p)) for _ in range(10)))
    r = RefundRequested(order_id=p.order_id, user_id=user, amount_cents=1200, reason="test")
    await asyncio.gather(*(uow.run(lambda tx: ledger.refund_payment(tx, r)) for _ in range(10)))
    account = await mongo.db[ACCOUNTS].find_one({"_id": user})
    assert account is not None and account["balance_cents"] == 5000
    kinds = sorted(e["kind"] for e in await mongo.db[LEDGER].find({"account": user}).to_list(None))
    assert kinds == ["payment", "refund", "topup"]
    types = sorted(a["type"] for a in await mongo.db[OUTBOX].find({}).to_list(None))
    assert types.count("wallet.payment-captured") == 1 and types.count("wallet.refund-completed") == 1


async def test_a_topup_is_credited_once_however_many_race(wallet_db: tuple[Mongo, UnitOfWork]) -> None:
    mongo, uow = wallet_db
    user = new_id()
    await open_and_fund(uow, user, 100)
    topup_id = new_id()
    await mongo.db[TOPUPS].insert_one(
        {
            "_id": topup_id,
            "user_id": user,
            "amount_cents": 2500,
            "channel": "alipay",
            "status": "pending",
            "created_at": utcnow(),
        }
    )
    results = await asyncio.gather(
        *(uow.run(lambda tx: ledger.credit_topup(tx, topup_id, points_per_yuan=2, via="notify")) for _ in range(8))
    )
    assert sum(1 for r in results if r is not None) == 1
    account = await mongo.db[ACCOUNTS].find_one({"_id": user})
    assert account is not None and (account["balance_cents"], account["points"]) == (2600, 1 * 1 + 25 * 2)


async def test_a_free_order_is_captured_and_bad_requests_are_rejected(wallet_db: tuple[Mongo, UnitOfWork]) -> None:
    mongo, uow = wallet_db
    user = new_id()
    await open_and_fund(uow, user, 300)
    free = pay(user, 0)  # fully paid by a coupon: still answered, so the saga goes on
    await uow.run(lambda tx: ledger.capture_payment(tx, free))
    [captured] = await mongo.db[OUTBOX].find({"type": "wallet.payment-captured"}).to_list(None)
    assert captured["key"] == free.order_id
    with pytest.raises(RejectEvent, match="must not be negative"):
        await uow.run(lambda tx: ledger.capture_payment(tx, pay(user, -1)))
    with pytest.raises(RejectEvent, match="exceeds"):
        await uow.run(
            lambda tx: ledger.refund_payment(
                tx, RefundRequested(order_id=free.order_id, user_id=user, amount_cents=1, reason="x")
            )
        )
    with pytest.raises(RejectEvent, match="no payment"):
        await uow.run(
            lambda tx: ledger.refund_payment(
                tx, RefundRequested(order_id=free.order_id, user_id=new_id(), amount_cents=0, reason="x")
            )
        )
    account = await mongo.db[ACCOUNTS].find_one({"_id": user})
    assert account is not None and account["balance_cents"] == 300
