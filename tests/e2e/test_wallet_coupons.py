"""Coupons end to end: admins define and grant them, the wallet holds one when an order is
placed, consumes it with the payment and releases it when the order is cancelled or expires;
first-order-only, per-user limits and the rules refuse what they must."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from shared.contracts.envelope import new_id
from tests.e2e.wallet_kit import (
    ADMIN,
    STAFF,
    eventually,
    fund,
    gw,
    open_account,
    payment,
    placed,
    producer,
    publish,
    status_changed,
    wallet,
    wallet_events,
)
from tests.helpers import auth

__all__ = ["gw", "producer"]  # fixtures


def _in(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def define(gw: httpx.AsyncClient, **body: Any) -> str:
    body = {"code": "T" + new_id()[:12].upper(), "expires_at": _in(30), **body}
    r = await gw.post("/api/v1/admin/coupons", json=body, headers=auth(**ADMIN))
    assert r.status_code == 201, r.text
    code: str = r.json()["code"]
    return code


async def grant(gw: httpx.AsyncClient, code: str, *users: str, quantity: int = 1) -> dict[str, Any]:
    r = await gw.post(
        f"/api/v1/admin/coupons/{code}/grants",
        json={"user_ids": list(users), "quantity": quantity},
        headers=auth(**STAFF),
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def mine(gw: httpx.AsyncClient, user: str, code: str) -> dict[str, Any] | None:
    return next((c for c in (await wallet(gw, user))["coupons"] if c["code"] == code), None)


async def counts(gw: httpx.AsyncClient, user: str, code: str) -> tuple[int, int, int]:
    c = await mine(gw, user, code)
    assert c is not None
    return c["available"], c["held"], c["used"]


async def until_counts(gw: httpx.AsyncClient, user: str, code: str, want: tuple[int, int, int]) -> None:
    async def reached() -> bool:
        return await counts(gw, user, code) == want

    await eventually(reached, message=f"{code} counts {want}")


async def answer(infra: dict[str, str], order_id: str) -> Any:
    [(env, payload)] = await eventually(lambda: wallet_events(infra, key=order_id), message=f"answer for {order_id}")
    return env.type, payload


async def test_hold_consume_release_across_payment_cancel_and_expiry(
    gw: httpx.AsyncClient, producer: AIOKafkaProducer, infra: dict[str, str]
) -> None:
    user = await open_account(gw, producer)
    await fund(gw, user, 100000)
    code = await define(
        gw,
        kind="fixed",
        amount_off_cents=500,
        min_spend_cents=2000,
        category_ids=["cat-phone"],
        per_user_limit=2,
        description="满20减5",
    )
    assert (await grant(gw, code, user, quantity=2))["granted"] == [{"user_id": user, "quantity": 2}]
    await until_counts(gw, user, code, (2, 0, 0))

    # Placed -> held; paid -> consumed (used), in the payment's transaction.
    a = placed(user, unit_price_cents=3000, discount_cents=500, coupon_code=code)
    await publish(producer, a)
    await until_counts(gw, user, code, (1, 1, 0))
    await publish(producer, payment(user, 2500, order_id=a.order_id, coupon_code=code))
    kind, captured = await answer(infra, a.order_id)
    assert kind == "wallet.payment-captured" and captured.amount_cents == 2500
    await until_counts(gw, user, code, (1, 0, 1))

    # Placed -> held; cancelled -> released (available again). A duplicate cancel changes nothing.
    b = placed(user, unit_price_cents=3000, discount_cents=500, coupon_code=code)
    await publish(producer, b)
    await until_counts(gw, user, code, (0, 1, 1))
    await publish(producer, status_changed(b, "cancelled"))
    await publish(producer, status_changed(b, "cancelled"))
    await until_counts(gw, user, code, (1, 0, 1))
    # Paying a cancelled order's coupon is refused (the order would not ask, but the wallet checks).
    await publish(producer, payment(user, 2500, order_id=b.order_id, coupon_code=code))
    kind, declined = await answer(infra, b.order_id)
    assert (kind, declined.reason) == ("wallet.payment-declined", "coupon-unavailable")

    # Placed -> held; expired unpaid -> released.
    c = placed(user, unit_price_cents=3000, discount_cents=500, coupon_code=code)
    await publish(producer, c)
    await publish(producer, c)  # placed twice (another event id): held once
    await until_counts(gw, user, code, (0, 1, 1))
    await publish(producer, status_changed(c, "expired"))
    await until_counts(gw, user, code, (1, 0, 1))

    # The last one is used; with none left, the next order's coupon is not held and its payment declined.
    d = placed(user, unit_price_cents=3000, discount_cents=500, coupon_code=code)
    await publish(producer, d)
    await until_counts(gw, user, code, (0, 1, 1))
    await publish(producer, payment(user, 2500, order_id=d.order_id, coupon_code=code))
    await until_counts(gw, user, code, (0, 0, 2))
    e = placed(user, unit_price_cents=3000, discount_cents=500, coupon_code=code)
    await publish(producer, e)
    await publish(producer, payment(user, 2500, order_id=e.order_id, coupon_code=code))
    kind, declined = await answer(infra, e.order_id)
    assert (kind, declined.reason) == ("wallet.payment-declined", "coupon-unavailable")
    assert (await wallet(gw, user))["balance_cents"] == 100000 - 2 * 2500
    assert await counts(gw, user, code) == (0, 0, 2)


async def test_rules_refuse_ineligible_orders(
    gw: httpx.AsyncClient, producer: AIOKafkaProducer, infra: dict[str, str]
) -> None:
    user = await open_account(gw, producer)
    await fund(gw, user, 100000)
    code = await define(
        gw,
        kind="percent",
        percent_off_bp=1000,
        max_discount_cents=300,
        min_spend_cents=1000,
        sku_ids=["sku-1"],
        per_user_limit=1,
    )
    await grant(gw, code, user)
    await until_counts(gw, user, code, (1, 0, 0))
    refused = [
        placed(user, unit_price_cents=900, discount_cents=90, coupon_code=code),  # below the minimum spend
        placed(user, unit_price_cents=5000, discount_cents=300, coupon_code=code, sku_id="sku-2"),  # other item
        placed(user, unit_price_cents=5000, discount_cents=500, coupon_code=code),  # claims more than the cap
        placed(user, unit_price_cents=5000, discount_cents=300, coupon_code="NO-SUCH-COUPON"),
    ]
    for order in refused:
        await publish(producer, order)
        await publish(
            producer, payment(user, order.total_cents, order_id=order.order_id, coupon_code=order.coupon_code)
        )
    for order in refused:
        kind, declined = await answer(infra, order.order_id)
        assert (kind, declined.reason) == ("wallet.payment-declined", "coupon-unavailable"), order
    assert await counts(gw, user, code) == (1, 0, 0)
    ok = placed(user, unit_price_cents=5000, discount_cents=300, coupon_code=code)  # 10 % = 500, capped at 300
    await publish(producer, ok)
    await publish(producer, payment(user, 4700, order_id=ok.order_id, coupon_code=code))
    kind, _ = await answer(infra, ok.order_id)
    assert kind == "wallet.payment-captured"
    await until_counts(gw, user, code, (0, 0, 1))
    assert (await wallet(gw, user))["balance_cents"] == 100000 - 4700


async def test_first_order_coupon_is_granted_on_signup_and_only_for_the_first_order(
    gw: httpx.AsyncClient, producer: AIOKafkaProducer, infra: dict[str, str]
) -> None:
    code = await define(
        gw,
        kind="fixed",
        amount_off_cents=1000,
        first_order_only=True,
        grant_on_signup=True,
        description="首单立减 10 元",
    )
    [(_, defined)] = await eventually(lambda: wallet_events(infra, key=code, type_="wallet.coupon-defined"))
    assert (defined.kind, defined.amount_off_cents, defined.first_order_only, defined.revision) == (
        "fixed",
        1000,
        True,
        1,
    )
    newcomer = await open_account(gw, producer)
    veteran = await open_account(gw, producer)
    await eventually(lambda: mine(gw, newcomer, code), message="signup coupon")
    granted = await eventually(lambda: wallet_events(infra, key=newcomer, type_="wallet.coupon-granted"))
    assert any(p.code == code and p.total_granted == 1 for _, p in granted)
    for u in (newcomer, veteran):
        await fund(gw, u, 10000)

    # The veteran already paid an order: the first-order coupon is refused for the next one.
    first = payment(veteran, 100)
    await publish(producer, first)
    await answer(infra, first.order_id)
    v = placed(veteran, unit_price_cents=3000, discount_cents=1000, coupon_code=code)
    await publish(producer, v)
    await publish(producer, payment(veteran, 2000, order_id=v.order_id, coupon_code=code))
    kind, declined = await answer(infra, v.order_id)
    assert (kind, declined.reason) == ("wallet.payment-declined", "coupon-unavailable")
    assert await counts(gw, veteran, code) == (1, 0, 0)

    # The newcomer's first order gets it.
    n = placed(newcomer, unit_price_cents=3000, discount_cents=1000, coupon_code=code)
    await publish(producer, n)
    await publish(producer, payment(newcomer, 2000, order_id=n.order_id, coupon_code=code))
    kind, _ = await answer(infra, n.order_id)
    assert kind == "wallet.payment-captured"
    await until_counts(gw, newcomer, code, (0, 0, 1))
    assert (await wallet(gw, newcomer))["balance_cents"] == 8000
    # Switched off, it is no longer given to new users (nor to the other tests' users).
    r = await gw.patch(f"/api/v1/admin/coupons/{code}", json={"active": False}, headers=auth(**ADMIN))
    assert r.status_code == 200
    later = await open_account(gw, producer)
    assert await mine(gw, later, code) is None


async def test_admin_coupon_endpoints_validate_and_guard(gw: httpx.AsyncClient, producer: AIOKafkaProducer) -> None:
    user = await open_account(gw, producer)
    good = {"code": "G" + new_id()[:10].upper(), "kind": "fixed", "amount_off_cents": 100, "expires_at": _in(1)}
    r = await gw.post("/api/v1/admin/coupons", json=good, headers=auth(user))
    assert r.status_code == 403
    r = await gw.post("/api/v1/admin/coupons", json=good, headers=auth(**STAFF))
    assert r.status_code == 403  # defining coupons is for admins
    for bad, field in [
        ({**good, "amount_off_cents": 0}, "amount_off_cents"),
        ({**good, "kind": "percent", "percent_off_bp": 0}, "percent_off_bp"),
        ({**good, "kind": "percent", "percent_off_bp": 10001}, "percent_off_bp"),
        ({**good, "expires_at": _in(-1)}, "expires_at"),
        ({**good, "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({**good, "per_user_limit": 0}, "per_user_limit"),
        ({**good, "code": "no spaces!"}, "code"),
        ({**good, "min_spend_cents": -5}, "min_spend_cents"),
    ]:
        r = await gw.post("/api/v1/admin/coupons", json=bad, headers=auth(**ADMIN))
        assert r.status_code == 422, (field, r.text)
        assert field in {e["field"] for e in r.json()["errors"]}, r.text
    r = await gw.post("/api/v1/admin/coupons", json={**good, "kind": "bogus"}, headers=auth(**ADMIN))
    assert r.status_code == 422
    listed = (await gw.get("/api/v1/admin/coupons", headers=auth(**STAFF))).json()["items"]
    assert good["code"] not in {c["code"] for c in listed}  # nothing was created by the bad requests

    assert (await gw.post("/api/v1/admin/coupons", json=good, headers=auth(**ADMIN))).status_code == 201
    assert (await gw.post("/api/v1/admin/coupons", json=good, headers=auth(**ADMIN))).status_code == 409
    # Per-user limit 1: a second grant is refused, even when asked for several at once.
    assert (await grant(gw, good["code"], user, quantity=3))["granted"] == [{"user_id": user, "quantity": 1}]
    again = await grant(gw, good["code"], user)
    assert again["granted"] == [] and again["refused"][0]["user_id"] == user
    await until_counts(gw, user, good["code"], (1, 0, 0))
    r = await gw.post("/api/v1/admin/coupons/NOPE/grants", json={"user_ids": [user]}, headers=auth(**STAFF))
    assert r.status_code == 404
    r = await gw.post(f"/api/v1/admin/coupons/{good['code']}/grants", json={"user_ids": []}, headers=auth(**STAFF))
    assert r.status_code == 422


async def test_a_switched_off_coupon_is_not_held_and_order_sees_every_revision(
    gw: httpx.AsyncClient, producer: AIOKafkaProducer, infra: dict[str, str]
) -> None:
    user = await open_account(gw, producer)
    await fund(gw, user, 10000)
    code = await define(gw, kind="fixed", amount_off_cents=100)
    await grant(gw, code, user)
    url = f"/api/v1/admin/coupons/{code}"
    assert (await gw.patch(url, json={"active": False}, headers=auth(**STAFF))).status_code == 403
    assert (await gw.patch(url, json={"expires_at": _in(-1)}, headers=auth(**ADMIN))).status_code == 422
    assert (
        await gw.patch("/api/v1/admin/coupons/NOPE", json={"active": False}, headers=auth(**ADMIN))
    ).status_code == 404
    r = await gw.patch(url, json={"active": False}, headers=auth(**ADMIN))
    assert r.status_code == 200 and (r.json()["active"], r.json()["revision"]) == (False, 2)
    revisions = await eventually(lambda: _revisions(infra, code, 2), message="coupon-defined revisions 1 and 2")
    assert revisions == [(1, True), (2, False)]
    order = placed(user, unit_price_cents=1000, discount_cents=100, coupon_code=code)
    await publish(producer, order)
    await publish(producer, payment(user, 900, order_id=order.order_id, coupon_code=code))
    kind, declined = await answer(infra, order.order_id)
    assert (kind, declined.reason) == ("wallet.payment-declined", "coupon-unavailable")
    assert await counts(gw, user, code) == (1, 0, 0)


async def _revisions(infra: dict[str, str], code: str, n: int) -> list[tuple[int, bool]] | None:
    found = sorted(
        (p.revision, p.active) for _, p in await wallet_events(infra, key=code, type_="wallet.coupon-defined")
    )
    return found if len(found) >= n else None
