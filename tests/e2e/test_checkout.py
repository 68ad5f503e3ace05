"""Checkout end to end through the gateway on the real stack: coupons in the quote and the order
(held while unpaid, consumed when paid, released on cancel and expiry, never used twice), and
orders paid through the payment provider (the simulator): paid on the signed notification,
duplicates and forgeries change nothing, unpaid orders expire and give their stock and coupon
back, and a payment that arrives after expiry is refunded to the balance."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from deploy.platform import Platform
from deploy.services import DEV_DEFAULTS
from services.wallet.domain import sign
from shared.contracts.envelope import new_id
from tests.flows import Flows
from tests.helpers import auth
from tests.helpers import eventually as until

PRICE = 2000
SECRET = DEV_DEFAULTS["PAYMENT_PROVIDER_SECRET"]


@pytest.fixture
async def flows(platform: Platform, infra: dict[str, str]) -> AsyncIterator[Flows]:
    f = Flows(platform.gateway_url, infra["KAFKA_BOOTSTRAP_SERVERS"], concurrency=20)
    yield f
    await f.close()


async def stocked_sku(flows: Flows, keys: int) -> str:
    sku_id = await flows.create_sku(price_cents=PRICE)
    await flows.import_keys(sku_id, [f"CK-{sku_id[:8]}-{i:04d}" for i in range(keys)])
    await flows.wait_orderable(sku_id, keys)
    return sku_id


async def coupon(flows: Flows, *users: str, expires_in: float = 30 * 86400, **rules: Any) -> str:
    """Define a coupon (admin) and grant one to each user (staff)."""
    code = "CK" + new_id()[:10].upper()
    expires_at = (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat()
    body = {"code": code, "kind": "fixed", "amount_off_cents": 500, "expires_at": expires_at, **rules}
    await flows.call("POST", "/api/v1/admin/coupons", json=body, headers=flows.admin, expect=201)
    if users:
        await flows.call(
            "POST",
            f"/api/v1/admin/coupons/{code}/grants",
            json={"user_ids": list(users), "quantity": 1},
            headers=flows.admin,
            expect=200,
        )
    return code


def order_body(sku_id: str, **extra: Any) -> dict[str, Any]:
    return {"sku_id": sku_id, "quantity": 1, **extra}


async def quote(flows: Flows, user: str, sku_id: str, code: str) -> httpx.Response:
    return await flows.call(
        "POST", "/api/v1/orders/quote", json=order_body(sku_id, coupon_code=code), headers=auth(user)
    )


async def quoted_with(flows: Flows, user: str, sku_id: str, code: str) -> dict[str, Any]:
    """The quote once the order service's projection knows the coupon and the user's grant."""

    async def ready() -> dict[str, Any] | None:
        r = await quote(flows, user, sku_id, code)
        return r.json() if r.status_code == 200 else None

    body: dict[str, Any] = await until(ready, message=f"quote with {code}")
    return body


async def counts(flows: Flows, user: str, code: str) -> tuple[int, int, int]:
    wallet = (await flows.call("GET", "/api/v1/wallet", headers=auth(user), expect=200)).json()
    [c] = [c for c in wallet["coupons"] if c["code"] == code]
    return c["available"], c["held"], c["used"]


async def until_counts(flows: Flows, user: str, code: str, want: tuple[int, int, int]) -> None:
    async def reached() -> bool:
        return await counts(flows, user, code) == want

    await until(reached, message=f"{code} counts {want}")


def coupon_errors(r: httpx.Response) -> list[str]:
    assert r.status_code == 422, r.text
    return [e["message"] for e in r.json()["errors"] if e["field"] == "coupon_code"]


async def pay_url_of(flows: Flows, user: str, placed: dict[str, Any]) -> str:
    if placed.get("pay_url"):
        return str(placed["pay_url"])

    async def known() -> str | None:
        return (await flows.get_order(user, placed["order_id"])).get("pay_url")

    url: str = await until(known, message="pay_url")
    return url


async def pay(pay_url: str, *, notify: bool = True) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(pay_url, json={"result": "success", "notify": notify})
        assert r.status_code == 200, r.text


async def notification(platform: Platform, order_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:

        async def sent() -> dict[str, Any] | None:
            r = await client.get(f"{platform.url('paysim')}/api/orders/order-{order_id}/notification")
            return r.json() if r.status_code == 200 and r.json() else None

        body: dict[str, Any] = await until(sent, message="the provider's notification")
        return body


# -- coupons ------------------------------------------------------------------------------------


async def test_first_order_coupon_in_quote_and_order_consumed_when_paid(flows: Flows) -> None:
    sku_id = await stocked_sku(flows, 3)
    [buyer] = await flows.new_buyers(1, 3 * PRICE)
    code = await coupon(flows, buyer, first_order_only=True, description="首单立减 5 元")
    q = await quoted_with(flows, buyer, sku_id, code)
    assert (q["subtotal_cents"], q["discount_cents"], q["total_cents"]) == (PRICE, 500, PRICE - 500)
    await until_counts(flows, buyer, code, (1, 0, 0))

    placed = await flows.order(buyer, sku_id, coupon_code=code)
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert body["discount_cents"] == 500 and body["total_cents"] == PRICE - 500
    order = await flows.wait_final(buyer, body["order_id"])
    assert order["status"] == "delivered" and order["coupon_code"] == code
    assert await flows.balance(buyer) == 3 * PRICE - (PRICE - 500)
    await until_counts(flows, buyer, code, (0, 0, 1))  # consumed with the payment

    # Used: no second discount, in the quote or the order.
    assert coupon_errors(await quote(flows, buyer, sku_id, code))
    assert coupon_errors(await flows.order(buyer, sku_id, coupon_code=code))


async def test_bad_coupons_are_422_on_coupon_code(flows: Flows) -> None:
    sku_id = await stocked_sku(flows, 1)
    [buyer, other] = await flows.new_buyers(2, 3 * PRICE)
    theirs = await coupon(flows, other)
    await quoted_with(flows, other, sku_id, theirs)  # the projection knows it
    assert coupon_errors(await quote(flows, buyer, sku_id, theirs)) == ["you have no unused coupon with this code"]
    big = await coupon(flows, buyer, min_spend_cents=PRICE + 1)
    expiring = await coupon(flows, buyer, expires_in=4)
    await until(lambda: _known(flows, other, sku_id, big), message="big coupon projected")
    assert coupon_errors(await quote(flows, buyer, sku_id, big)) == ["the order is below this coupon's minimum spend"]
    await asyncio.sleep(4)
    assert coupon_errors(await quote(flows, buyer, sku_id, expiring)) == ["this coupon has expired"]
    assert coupon_errors(await flows.order(buyer, sku_id, coupon_code=expiring)) == ["this coupon has expired"]
    assert coupon_errors(await quote(flows, buyer, sku_id, "NO-SUCH-COUPON")) == ["no such coupon"]
    assert await flows.balance(buyer) == 3 * PRICE


async def _known(flows: Flows, user: str, sku_id: str, code: str) -> bool:
    r = await quote(flows, user, sku_id, code)
    return r.status_code == 200 or coupon_errors(r) != ["no such coupon"]


async def test_two_concurrent_orders_with_one_coupon_discount_only_one(flows: Flows) -> None:
    sku_id = await stocked_sku(flows, 4)
    [buyer] = await flows.new_buyers(1, 4 * PRICE)
    code = await coupon(flows, buyer)
    await quoted_with(flows, buyer, sku_id, code)
    answers = await asyncio.gather(*(flows.order(buyer, sku_id, coupon_code=code) for _ in range(2)))
    won = [a for a in answers if a.status_code == 201]
    lost = [a for a in answers if a.status_code != 201]
    assert len(won) == 1 and won[0].json()["discount_cents"] == 500, [a.text for a in answers]
    # Refused either by the order service's check (the other order was already written) or by
    # the wallet's hold (both passed the check at once): never a second discount.
    [refused] = lost
    assert refused.status_code in (409, 422), refused.text
    if refused.status_code == 409:
        assert refused.json()["type"].endswith("coupon-unavailable")
    else:
        assert coupon_errors(refused)
    await flows.wait_final(buyer, won[0].json()["order_id"])
    await until_counts(flows, buyer, code, (0, 0, 1))
    assert await flows.balance(buyer) == 4 * PRICE - (PRICE - 500)
    listed = (await flows.call("GET", "/api/v1/orders?group=completed", headers=auth(buyer), expect=200)).json()
    assert [o["discount_cents"] for o in listed["items"]] == [500]


async def test_a_cancelled_orders_coupon_is_released(flows: Flows) -> None:
    sku_id = await stocked_sku(flows, 2)
    [buyer] = await flows.new_buyers(1, 0)
    code = await coupon(flows, buyer)
    await quoted_with(flows, buyer, sku_id, code)
    placed = await flows.order(buyer, sku_id, coupon_code=code, pay_with="provider", channel="alipay")
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    await until_counts(flows, buyer, code, (0, 1, 0))  # held while unpaid
    await flows.call("POST", f"/api/v1/orders/{order_id}/cancel", headers=auth(buyer), expect=200)
    await until_counts(flows, buyer, code, (1, 0, 0))
    again = await quoted_with(flows, buyer, sku_id, code)
    assert again["discount_cents"] == 500


# -- paying through the provider ------------------------------------------------------------------


async def test_pay_by_provider_with_a_coupon_duplicates_and_forgeries(flows: Flows, platform: Platform) -> None:
    sku_id = await stocked_sku(flows, 2)
    [buyer] = await flows.new_buyers(1, 0)
    code = await coupon(flows, buyer, first_order_only=True)
    await quoted_with(flows, buyer, sku_id, code)
    started = time.monotonic()
    placed = await flows.order(
        buyer, sku_id, coupon_code=code, pay_with="provider", channel="wechat", idempotency_key="pay-1"
    )
    assert placed.status_code == 201, placed.text
    assert time.monotonic() - started < 5  # the buyer's next step is to pay: no long wait
    body = placed.json()
    assert body["status"] == "pending_payment" and body["expires_at"]
    assert body["pay_url"], "the wallet's pay_url within the placing wait"
    order_id = body["order_id"]
    stock = (await flows.call("GET", f"/api/v1/admin/skus/{sku_id}/stock", headers=flows.admin, expect=200)).json()
    assert stock["reserved"] == 1  # held at creation
    await until_counts(flows, buyer, code, (0, 1, 0))
    # A retry with the same key answers the same order and pay_url.
    retry = await flows.order(
        buyer, sku_id, coupon_code=code, pay_with="provider", channel="wechat", idempotency_key="pay-1"
    )
    assert (retry.json()["order_id"], retry.json()["pay_url"]) == (order_id, body["pay_url"])

    # A forged notification (the amount changed, the signature kept) changes nothing.
    await pay(body["pay_url"], notify=False)
    real = await notification(platform, order_id)
    forged = await flows.call("POST", "/api/v1/payments/notify/wechat", json={**real, "amount_cents": 1})
    assert forged.status_code == 401, forged.text
    unsigned = {k: v for k, v in real.items() if k != "sign"}
    assert (await flows.call("POST", "/api/v1/payments/notify/wechat", json=unsigned)).status_code == 401
    assert (await flows.get_order(buyer, order_id))["status"] == "pending_payment"

    # The real one pays it once; the same notification again changes nothing.
    first = await flows.call("POST", "/api/v1/payments/notify/wechat", json=real, expect=200)
    # `unchanged` when the wallet's poll (TOPUP_POLL_AFTER_SECONDS, 4 s in tests) found it first.
    assert first.json()["outcome"] in ("paid", "unchanged")
    again = await flows.call("POST", "/api/v1/payments/notify/wechat", json=real, expect=200)
    assert again.json()["outcome"] == "unchanged"
    order = await flows.wait_final(buyer, order_id)
    assert order["status"] == "delivered" and order["total_cents"] == PRICE - 500
    assert len(await flows.card_keys(buyer, order_id)) == 1
    await until_counts(flows, buyer, code, (0, 0, 1))  # consumed when paid
    assert await flows.balance(buyer) == 0  # the provider's money went in and out once
    ledger = (await flows.call("GET", "/api/v1/wallet/ledger", headers=auth(buyer), expect=200)).json()["items"]
    assert sorted((e["kind"], e["amount_cents"]) for e in ledger) == [
        ("payment", -(PRICE - 500)),
        ("provider", PRICE - 500),
    ]
    # A notification for a trade nobody registered is 404 (signed, so it gets that far).
    stray = {**real, "merchant_trade_no": "order-" + new_id()}
    stray["sign"] = sign(stray, SECRET)
    assert (await flows.call("POST", "/api/v1/payments/notify/wechat", json=stray)).status_code == 404


async def test_unpaid_provider_order_expires_releases_stock_and_coupon_and_a_late_payment_is_refunded(
    flows: Flows, platform: Platform
) -> None:
    sku_id = await stocked_sku(flows, 1)
    [buyer] = await flows.new_buyers(1, 0)
    code = await coupon(flows, buyer)
    await quoted_with(flows, buyer, sku_id, code)
    platform.restart("order", {"PAYMENT_TIMEOUT_MINUTES": "0.1", "EXPIRY_SWEEP_SECONDS": "0.3"})
    try:
        placed = await flows.order(buyer, sku_id, coupon_code=code, pay_with="provider", channel="alipay")
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["order_id"]
        pay_url = await pay_url_of(flows, buyer, placed.json())
        await until_counts(flows, buyer, code, (0, 1, 0))
        expired = await flows.wait_final(buyer, order_id, final={"expired"})
        assert expired["status"] == "expired" and expired["pay_url"] is None
        stock = (await flows.call("GET", f"/api/v1/admin/skus/{sku_id}/stock", headers=flows.admin, expect=200)).json()
        assert stock["reserved"] == 0 and stock["available"] == 1  # the key is for sale again
        await until_counts(flows, buyer, code, (1, 0, 0))  # and the coupon is the buyer's again

        # The buyer pays anyway (a page left open): the money lands on the balance, nothing is delivered.
        await pay(pay_url)
        final = await flows.wait_final(buyer, order_id, final={"refunded"})
        assert [h["status"] for h in final["history"]][-3:] == ["expired", "refunding", "refunded"]
        assert await until(lambda: _balance_is(flows, buyer, PRICE - 500), message="refund on the balance")
        keys = await flows.call("GET", f"/api/v1/orders/{order_id}/card-keys", headers=auth(buyer))
        assert keys.status_code != 200 or keys.json()["card_keys"] == []
        await until_counts(flows, buyer, code, (1, 0, 0))
    finally:
        platform.restart("order")


async def _balance_is(flows: Flows, user: str, cents: int) -> bool:
    return await flows.balance(user) == cents
