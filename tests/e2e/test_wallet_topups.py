"""Top-ups through the simulated payment provider, end to end: the buyer pays at pay_url, the
provider's signed notification comes back through the gateway, the wallet credits exactly once;
forged and mismatched notifications change nothing; a lost callback is completed by polling;
bank transfers are approved by staff (audited)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from deploy.platform import Platform
from deploy.services import DEV_DEFAULTS
from services.wallet.domain import sign
from shared.contracts.envelope import new_id
from shared.contracts.identity import UserRegistered
from tests.e2e.wallet_kit import (
    STAFF,
    eventually,
    fund,
    gw,
    ledger,
    open_account,
    producer,
    publish,
    wallet,
    wallet_events,
)
from tests.helpers import auth

__all__ = ["gw", "producer"]  # fixtures

SECRET = DEV_DEFAULTS["PAYMENT_PROVIDER_SECRET"]
POLL_AFTER_SECONDS = 4  # TOPUP_POLL_AFTER_SECONDS in tests/conftest.py
EXPIRE_AFTER_SECONDS = 12  # TOPUP_EXPIRE_AFTER_SECONDS


async def start_topup(
    gw: httpx.AsyncClient, user_id: str, amount_cents: int, channel: str = "alipay"
) -> dict[str, Any]:
    r = await gw.post(
        "/api/v1/wallet/topups", json={"amount_cents": amount_cents, "channel": channel}, headers=auth(user_id)
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == "pending"
    return body


async def topup_status(gw: httpx.AsyncClient, user_id: str, topup_id: str) -> str:
    r = await gw.get(f"/api/v1/wallet/topups/{topup_id}", headers=auth(user_id))
    assert r.status_code == 200, r.text
    status: str = r.json()["status"]
    return status


async def pay(pay_url: str, result: str = "success", *, notify: bool = True) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(pay_url, json={"result": result, "notify": notify})
        assert r.status_code == 200, r.text


async def provider_notification(platform: Platform, topup_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(f"{platform.url('paysim')}/api/orders/{topup_id}/notification")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


async def test_account_opens_once_per_user(
    gw: httpx.AsyncClient, producer: AIOKafkaProducer, infra: dict[str, str]
) -> None:
    user = new_id()
    env = await publish(producer, UserRegistered(user_id=user))
    await publish(producer, env)  # redelivered
    await publish(producer, UserRegistered(user_id=user))  # registered "again" (another event id)
    await open_account(gw, producer, user)
    view = await wallet(gw, user)
    assert (view["opened"], view["balance_cents"], view["points"]) == (True, 0, 0)
    await asyncio.sleep(1.5)  # let every copy arrive before counting
    assert len(await wallet_events(infra, key=user, type_="wallet.account-opened")) == 1


async def test_topup_success_credits_balance_points_and_ledger(
    gw: httpx.AsyncClient, producer: AIOKafkaProducer, infra: dict[str, str]
) -> None:
    user = await open_account(gw, producer)
    topup = await start_topup(gw, user, 10050)
    assert topup["pay_url"].startswith("http")
    await pay(topup["pay_url"])
    await eventually(lambda: _is(gw, user, topup["topup_id"], "succeeded"), message="top-up credited")

    view = await wallet(gw, user)
    assert (view["balance_cents"], view["points"]) == (10050, 100)  # 1 point per whole yuan
    [entry] = await ledger(gw, user)
    assert (entry["kind"], entry["amount_cents"], entry["points"], entry["balance_after_cents"]) == (
        "topup",
        10050,
        100,
        10050,
    )
    [(_, event)] = await eventually(
        lambda: wallet_events(infra, key=user, type_="wallet.topup-succeeded"), message="topup-succeeded event"
    )
    assert (event.topup_id, event.amount_cents, event.points, event.channel) == (
        topup["topup_id"],
        10050,
        100,
        "alipay",
    )


async def test_failed_payment_marks_the_topup_failed(gw: httpx.AsyncClient, producer: AIOKafkaProducer) -> None:
    user = await open_account(gw, producer)
    topup = await start_topup(gw, user, 2000, "wechat")
    await pay(topup["pay_url"], "fail")
    await eventually(lambda: _is(gw, user, topup["topup_id"], "failed"), message="top-up failed")
    assert (await wallet(gw, user))["balance_cents"] == 0
    assert await ledger(gw, user) == []


async def test_the_same_notification_five_times_credits_once(
    gw: httpx.AsyncClient, producer: AIOKafkaProducer, platform: Platform
) -> None:
    user = await open_account(gw, producer)
    topup = await start_topup(gw, user, 3000)
    await pay(topup["pay_url"], notify=False)
    note = await provider_notification(platform, topup["topup_id"])
    # Five copies, at once: a provider retrying while the first is still being processed.
    answers = await asyncio.gather(*(gw.post("/api/v1/payments/notify/alipay", json=note) for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
    assert all(a.json()["result"] == "success" for a in answers)
    assert sorted(a.json()["outcome"] for a in answers) == ["credited"] + ["unchanged"] * 4
    assert await topup_status(gw, user, topup["topup_id"]) == "succeeded"
    assert (await wallet(gw, user))["balance_cents"] == 3000
    assert [e["amount_cents"] for e in await ledger(gw, user)] == [3000]


async def test_forged_and_mismatched_notifications_credit_nothing(
    gw: httpx.AsyncClient, producer: AIOKafkaProducer, platform: Platform
) -> None:
    user = await open_account(gw, producer)
    topup = await start_topup(gw, user, 5000)
    # The buyer has NOT paid; the provider would say so if polled. Attackers post notifications.
    async with httpx.AsyncClient(timeout=10) as client:
        q = (await client.get(f"{platform.url('paysim')}/api/orders/{topup['topup_id']}")).json()
    genuine = {
        "merchant_trade_no": topup["topup_id"],
        "provider_trade_no": q["provider_trade_no"],
        "amount_cents": 5000,
        "channel": "alipay",
        "status": "success",
        "notify_id": new_id(),
    }
    forged = {**genuine, "sign": sign(genuine, "guessed-secret")}
    tampered = {**genuine, "sign": sign(genuine, SECRET), "amount_cents": 500000}  # amount changed after signing
    unsigned = dict(genuine)
    wrong_amount = {**genuine, "amount_cents": 50}
    wrong_amount["sign"] = sign(wrong_amount, SECRET)  # validly signed, but not this top-up's amount
    wrong_trade = {**genuine, "provider_trade_no": "P-OTHER"}
    wrong_trade["sign"] = sign(wrong_trade, SECRET)
    unknown = {**genuine, "merchant_trade_no": new_id()}
    unknown["sign"] = sign(unknown, SECRET)
    wrong_channel = {**genuine, "sign": sign(genuine, SECRET)}

    cases = [
        ("alipay", forged, 401, "invalid-signature"),
        ("alipay", tampered, 401, "invalid-signature"),
        ("alipay", unsigned, 401, "invalid-signature"),
        ("alipay", wrong_amount, 422, "amount-mismatch"),
        ("alipay", wrong_trade, 422, "trade-mismatch"),
        ("alipay", unknown, 404, "unknown-trade"),
        ("wechat", wrong_channel, 404, "unknown-trade"),
    ]
    for channel, body, status, slug in cases:
        r = await gw.post(f"/api/v1/payments/notify/{channel}", json=body)
        assert r.status_code == status, (slug, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"].endswith(slug)
    r = await gw.post(
        "/api/v1/payments/notify/alipay", content=b"not json", headers={"content-type": "application/json"}
    )
    assert 400 <= r.status_code < 500
    assert await topup_status(gw, user, topup["topup_id"]) == "pending"
    assert (await wallet(gw, user))["balance_cents"] == 0
    assert await ledger(gw, user) == []

    # The buyer really pays: the provider's own notification is accepted.
    await pay(topup["pay_url"])
    await eventually(lambda: _is(gw, user, topup["topup_id"], "succeeded"), message="genuine notification credited")
    assert (await wallet(gw, user))["balance_cents"] == 5000


async def test_a_lost_callback_is_completed_by_polling(
    gw: httpx.AsyncClient, producer: AIOKafkaProducer, platform: Platform
) -> None:
    user = await open_account(gw, producer)
    topup = await start_topup(gw, user, 4200)
    await pay(topup["pay_url"], notify=False)  # paid, but the notification is lost
    await asyncio.sleep(1)
    assert await topup_status(gw, user, topup["topup_id"]) == "pending"
    await eventually(
        lambda: _is(gw, user, topup["topup_id"], "succeeded"),
        timeout=POLL_AFTER_SECONDS + 20,
        message="top-up completed by polling",
    )
    assert (await wallet(gw, user))["balance_cents"] == 4200
    r = await gw.get("/api/v1/admin/topups", params={"status": "succeeded", "user_id": user}, headers=auth(**STAFF))
    assert [(t["topup_id"], t["credited_via"]) for t in r.json()["items"]] == [(topup["topup_id"], "poll")]
    # The notification arriving late changes nothing.
    note = await provider_notification(platform, topup["topup_id"])
    r = await gw.post("/api/v1/payments/notify/alipay", json=note)
    assert r.status_code == 200 and r.json()["outcome"] == "unchanged"
    assert (await wallet(gw, user))["balance_cents"] == 4200


async def test_an_unpaid_topup_expires_and_can_no_longer_be_paid(
    gw: httpx.AsyncClient, producer: AIOKafkaProducer
) -> None:
    user = await open_account(gw, producer)
    topup = await start_topup(gw, user, 1500)
    await eventually(
        lambda: _is(gw, user, topup["topup_id"], "failed"),
        timeout=EXPIRE_AFTER_SECONDS + 20,
        message="unpaid top-up expired",
    )
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(topup["pay_url"], json={"result": "success"})
    assert r.status_code == 409  # closed at the provider: the buyer cannot pay into a failed top-up
    assert (await wallet(gw, user))["balance_cents"] == 0
    r = await gw.get("/api/v1/admin/topups", params={"status": "failed", "user_id": user}, headers=auth(**STAFF))
    assert r.json()["items"][0]["failure_reason"] == "expired unpaid (poll)"


async def test_bad_topup_requests_are_problems_and_create_nothing(
    gw: httpx.AsyncClient, producer: AIOKafkaProducer
) -> None:
    user = await open_account(gw, producer)
    for body, field in [
        ({"amount_cents": 0, "channel": "alipay"}, "amount_cents"),
        ({"amount_cents": -100, "channel": "alipay"}, "amount_cents"),
        ({"amount_cents": 10**12, "channel": "alipay"}, "amount_cents"),
        ({"amount_cents": 1000, "channel": "paypal"}, "channel"),
    ]:
        r = await gw.post("/api/v1/wallet/topups", json=body, headers=auth(user))
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert field in {e["field"] for e in r.json()["errors"]}
    r = await gw.post("/api/v1/wallet/topups", json={"amount_cents": "12.5", "channel": "alipay"}, headers=auth(user))
    assert r.status_code == 422 and r.json()["errors"]
    r = await gw.post("/api/v1/wallet/topups", json={"amount_cents": 1000, "channel": "alipay"})
    assert r.status_code == 401
    # A caller the wallet has not heard of yet (identity's event still on its way) gets an
    # account opened on first use rather than 409 no-account (issue 12, read-your-writes).
    stranger = new_id()
    r = await gw.post("/api/v1/wallet/topups", json={"amount_cents": 1000, "channel": "alipay"}, headers=auth(stranger))
    assert r.status_code == 201, r.text
    assert (await gw.get("/api/v1/wallet", headers=auth(stranger))).json()["opened"] is True
    r = await gw.get("/api/v1/admin/topups", params={"user_id": user, "status": "pending"}, headers=auth(**STAFF))
    assert r.json()["items"] == []

    r = await gw.post(
        "/api/v1/wallet/topups",
        json={"amount_cents": 1000, "channel": "alipay"},
        headers={**auth(user), "Idempotency-Key": "k" * 201},
    )
    assert r.status_code == 422
    # Idempotency-Key: the same body returns the same top-up; another body is refused.
    headers = {**auth(user), "Idempotency-Key": "k-" + new_id()}
    first = await gw.post("/api/v1/wallet/topups", json={"amount_cents": 1000, "channel": "alipay"}, headers=headers)
    again = await gw.post("/api/v1/wallet/topups", json={"amount_cents": 1000, "channel": "alipay"}, headers=headers)
    other = await gw.post("/api/v1/wallet/topups", json={"amount_cents": 2000, "channel": "alipay"}, headers=headers)
    assert first.status_code == 201 and again.status_code == 201
    assert first.json()["topup_id"] == again.json()["topup_id"]
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")
    # Someone else's top-up does not exist for you.
    assert (
        await gw.get(f"/api/v1/wallet/topups/{first.json()['topup_id']}", headers=auth(new_id()))
    ).status_code == 404


async def test_bank_transfer_is_approved_by_staff_once_with_an_audit(
    gw: httpx.AsyncClient, producer: AIOKafkaProducer
) -> None:
    user = await open_account(gw, producer)
    r = await gw.post("/api/v1/wallet/topups", json={"amount_cents": 88800, "channel": "bank"}, headers=auth(user))
    assert r.status_code == 201 and r.json()["pay_url"] is None
    topup_id = r.json()["topup_id"]
    url = f"/api/v1/admin/topups/{topup_id}/approve"
    assert (await gw.post(url, json={"note": "x"}, headers=auth(user))).status_code == 403  # buyers cannot
    assert (await gw.post(url, json={"note": "  "}, headers=auth(**STAFF))).status_code == 422
    staff = new_id()
    approvals = await asyncio.gather(
        *(gw.post(url, json={"note": "ICBC ref 2026112201"}, headers=auth(staff, roles=("staff",))) for _ in range(3))
    )
    assert sorted(a.status_code for a in approvals) == [200, 409, 409]
    assert (await wallet(gw, user))["balance_cents"] == 88800
    r = await gw.get("/api/v1/admin/topups", params={"status": "succeeded", "user_id": user}, headers=auth(**STAFF))
    [item] = r.json()["items"]
    assert (item["approved_by"], item["approval_note"], item["credited_via"]) == (staff, "ICBC ref 2026112201", "staff")
    assert item["approved_at"]
    # A provider top-up is never approved by hand: the provider's word decides it.
    t = await start_topup(gw, user, 1000)
    r = await gw.post(f"/api/v1/admin/topups/{t['topup_id']}/approve", json={"note": "x"}, headers=auth(**STAFF))
    assert r.status_code == 409
    await fund(gw, user, 100)
    assert (await wallet(gw, user))["balance_cents"] == 88900


async def _is(gw: httpx.AsyncClient, user: str, topup_id: str, status: str) -> bool:
    return await topup_status(gw, user, topup_id) == status
