"""Order payments and refunds in the wallet, driven by order events on the real broker: debited
exactly once per order, never overdrawn under 100 concurrent debits, refunded once, and the
spending report agrees with the ledger."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
from aiokafka import AIOKafkaProducer

from shared.contracts.envelope import new_id
from shared.messaging import dlq
from tests.e2e.wallet_kit import (
    eventually,
    fund,
    gw,
    ledger,
    open_account,
    payment,
    producer,
    publish,
    refund,
    wallet,
    wallet_events,
)
from tests.helpers import auth

__all__ = ["gw", "producer"]  # fixtures


async def test_payment_is_captured_once_however_often_it_is_requested(
    gw: httpx.AsyncClient, producer: AIOKafkaProducer, infra: dict[str, str]
) -> None:
    user = await open_account(gw, producer)
    await fund(gw, user, 10000)
    p = payment(user, 2500)
    env = await publish(producer, p)
    await publish(producer, env)  # redelivered (same event id)
    await publish(producer, p)  # requested again (a new event id, same order)
    [(_, captured)] = await eventually(
        lambda: wallet_events(infra, key=p.order_id, type_="wallet.payment-captured"), message="payment captured"
    )
    assert (captured.user_id, captured.amount_cents) == (user, 2500)
    follow_up = payment(user, 100)  # a later payment of the same buyer, then a pause for stragglers
    await publish(producer, follow_up)
    await eventually(lambda: wallet_events(infra, key=follow_up.order_id, type_="wallet.payment-captured"))
    await asyncio.sleep(1)
    assert (await wallet(gw, user))["balance_cents"] == 10000 - 2500 - 100
    entries = await ledger(gw, user)
    assert [e["amount_cents"] for e in entries if e["ref"] == p.order_id] == [-2500]
    assert entries[0]["category_id"] == "cat-phone" and entries[0]["description"] == "移动 100 元"
    assert len(await wallet_events(infra, key=p.order_id)) == 1  # one answer, no second capture


async def test_payment_is_declined_without_balance_or_account(
    gw: httpx.AsyncClient, producer: AIOKafkaProducer, infra: dict[str, str]
) -> None:
    user = await open_account(gw, producer)
    await fund(gw, user, 1000)
    too_much = payment(user, 1001)
    nobody = payment(new_id(), 100)
    await publish(producer, too_much)
    await publish(producer, nobody)
    [(_, declined)] = await eventually(
        lambda: wallet_events(infra, key=too_much.order_id, type_="wallet.payment-declined")
    )
    assert (declined.reason, declined.balance_cents) == ("insufficient-balance", 1000)
    [(_, none)] = await eventually(lambda: wallet_events(infra, key=nobody.order_id, type_="wallet.payment-declined"))
    assert none.reason == "no-account"
    # A declined order stays declined: money arriving later does not turn a repeat into a capture.
    await fund(gw, user, 5000)
    await publish(producer, too_much)
    later = payment(user, 1)
    await publish(producer, later)
    await eventually(lambda: wallet_events(infra, key=later.order_id, type_="wallet.payment-captured"))
    assert [e.type for e, _ in await wallet_events(infra, key=too_much.order_id)] == ["wallet.payment-declined"]
    assert (await wallet(gw, user))["balance_cents"] == 6000 - 1


async def test_100_concurrent_debits_never_overdraw_and_the_ledger_sums_to_the_balance(
    gw: httpx.AsyncClient, producer: AIOKafkaProducer, infra: dict[str, str]
) -> None:
    user = await open_account(gw, producer)
    await fund(gw, user, 10000)
    payments = [payment(user, 370) for _ in range(100)]  # 37.00 yuan: 27 fit in 100.00
    started = asyncio.get_running_loop().time()
    await asyncio.gather(*(publish(producer, p) for p in payments))
    ids = {p.order_id for p in payments}

    async def answered() -> list[str] | None:
        types = [e.type for e, _ in await wallet_events(infra) if e.key in ids]
        return types if len(types) >= 100 else None

    types = await eventually(answered, timeout=90, message="100 answers")
    elapsed = asyncio.get_running_loop().time() - started
    assert types.count("wallet.payment-captured") == 27
    assert types.count("wallet.payment-declined") == 73
    view = await wallet(gw, user)
    assert view["balance_cents"] == 10000 - 27 * 370 == 10
    entries = await ledger(gw, user)
    assert sum(e["amount_cents"] for e in entries) == view["balance_cents"]
    assert min(e["balance_after_cents"] for e in entries) >= 0
    print(f"100 payment requests answered in {elapsed:.1f}s")


async def test_refund_is_made_once_and_never_more_than_was_paid(
    gw: httpx.AsyncClient, producer: AIOKafkaProducer, infra: dict[str, str]
) -> None:
    user = await open_account(gw, producer)
    await fund(gw, user, 5000)
    p = payment(user, 3000)
    await publish(producer, p)
    await eventually(lambda: wallet_events(infra, key=p.order_id, type_="wallet.payment-captured"))
    r = refund(p)
    env = await publish(producer, r)
    await publish(producer, env)  # redelivered
    await publish(producer, r)  # requested again
    [(_, done)] = await eventually(lambda: wallet_events(infra, key=p.order_id, type_="wallet.refund-completed"))
    assert (done.amount_cents, done.user_id) == (3000, user)

    # Refunds that can never apply (more than was paid, an order never paid) are dead-lettered
    # with the reason and change nothing.
    unpaid = payment(user, 10)
    second = payment(user, 1000)
    await publish(producer, second)
    await eventually(lambda: wallet_events(infra, key=second.order_id, type_="wallet.payment-captured"))
    over = await publish(producer, refund(second, 1001))
    never = await publish(producer, refund(unpaid))

    async def dead_lettered() -> dict[str, str] | None:
        letters = await dlq.read_dead_letters(infra["KAFKA_BOOTSTRAP_SERVERS"], "order.events")
        found = {d.event_id: d.reason for d in letters if d.event_id in (over.event_id, never.event_id)}
        return found if len(found) == 2 else None

    reasons = await eventually(dead_lettered, message="bad refunds dead-lettered")
    assert reasons[over.event_id].startswith("rejected: refund 1001")
    assert reasons[never.event_id].startswith("rejected: no payment of order")
    assert len(await wallet_events(infra, key=p.order_id, type_="wallet.refund-completed")) == 1
    assert await wallet_events(infra, key=unpaid.order_id) == []
    assert await wallet_events(infra, key=second.order_id, type_="wallet.refund-completed") == []
    view = await wallet(gw, user)
    assert view["balance_cents"] == 5000 - 1000
    entries = await ledger(gw, user)
    assert sorted(e["amount_cents"] for e in entries if e["ref"] == p.order_id) == [-3000, 3000]
    assert sum(e["amount_cents"] for e in entries) == view["balance_cents"]


async def test_spending_report_matches_the_ledger(
    gw: httpx.AsyncClient, producer: AIOKafkaProducer, infra: dict[str, str]
) -> None:
    user = await open_account(gw, producer)
    await fund(gw, user, 100000)
    game = [payment(user, 1200, category_id="cat-game", description="点券") for _ in range(3)]
    phone = [payment(user, 5000, category_id="cat-phone") for _ in range(2)]
    for p in [*game, *phone]:
        await publish(producer, p)
    await eventually(
        lambda: _count(infra, {p.order_id for p in [*game, *phone]}, "wallet.payment-captured", 5), message="5 captures"
    )
    await publish(producer, refund(phone[0]))
    await eventually(lambda: wallet_events(infra, key=phone[0].order_id, type_="wallet.refund-completed"))

    r = await gw.get("/api/v1/wallet/report", params={"months": 3}, headers=auth(user))
    assert r.status_code == 200, r.text
    report = r.json()
    entries = await ledger(gw, user)
    spent = -sum(e["amount_cents"] for e in entries if e["kind"] == "payment")
    refunded = sum(e["amount_cents"] for e in entries if e["kind"] == "refund")
    assert (report["total_spent_cents"], report["total_refunded_cents"]) == (spent, refunded) == (13600, 5000)
    assert report["net_spent_cents"] == 8600
    assert {c["category_id"]: c["net_spent_cents"] for c in report["by_category"]} == {
        "cat-game": 3600,
        "cat-phone": 5000,
    }
    assert sum(c["share_bp"] for c in report["by_category"]) in (9999, 10000)
    month = datetime.now(UTC).strftime("%Y-%m")
    assert [m["month"] for m in report["months"]] == [month]
    assert report["months"][0]["net_spent_cents"] == 8600
    assert (await gw.get("/api/v1/wallet/report", params={"months": 0}, headers=auth(user))).status_code in (400, 422)
    assert (await gw.get("/api/v1/wallet/report")).status_code == 401
    # Nobody else sees these numbers.
    other = (await gw.get("/api/v1/wallet/report", headers=auth(new_id()))).json()
    assert other["total_spent_cents"] == 0


async def _count(infra: dict[str, str], ids: set[str], type_: str, n: int) -> bool:
    return sum(1 for e, _ in await wallet_events(infra, type_=type_) if e.key in ids) >= n
