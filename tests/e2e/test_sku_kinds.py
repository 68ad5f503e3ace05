"""SKU kinds from the seeds, end to end on the real stack: reusable ("loop", 循环卡密) keys go to
every buyer, are never sold out while on sale, and leave single keys unchanged; free trials
(免费体验) cost nothing, need the real name and go once to each verified person, whichever of
their accounts orders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from deploy.platform import Platform
from shared.contracts.envelope import new_id
from shared.contracts.identity import UserVerified
from tests.e2e.identity_kit import PASSWORD, id_number, unique_email
from tests.flows import Flows
from tests.helpers import auth, publish
from tests.helpers import eventually as until


@pytest.fixture
async def flows(platform: Platform, infra: dict[str, str]) -> AsyncIterator[Flows]:
    f = Flows(platform.gateway_url, infra["KAFKA_BOOTSTRAP_SERVERS"], concurrency=10)
    yield f
    await f.close()


async def product_sku(flows: Flows, sku_id: str) -> dict[str, object]:
    sku = (await flows.call("GET", f"/api/v1/admin/skus/{sku_id}", headers=flows.admin, expect=200)).json()
    product = (await flows.call("GET", f"/api/v1/catalog/products/{sku['product_id']}", expect=200)).json()
    [shown] = [s for s in product["skus"] if s["sku_id"] == sku_id]
    return shown  # type: ignore[no-any-return]


async def test_a_reusable_key_goes_to_every_buyer_and_never_sells_out(flows: Flows) -> None:
    # Bad definitions: a reusable key needs automatic delivery; an unknown mode is refused.
    for wrong in ({"key_mode": "reusable", "delivery_mode": "manual"}, {"key_mode": "loop"}):
        with pytest.raises(AssertionError, match=r" (400|422): "):
            await flows.create_sku(**wrong)  # type: ignore[arg-type]

    loop = await flows.create_sku(price_cents=200, key_mode="reusable", eta_seconds=60)
    single = await flows.create_sku(price_cents=200)
    await flows.import_keys(loop, [f"LOOP-{loop[:8]}"])
    await flows.import_keys(single, [f"ONE-{single[:8]}"])
    await flows.wait_orderable(loop, 1)
    await flows.wait_orderable(single, 1)
    shown = await product_sku(flows, loop)
    assert (shown["key_mode"], shown["stock"], shown["eta_seconds"]) == ("reusable", "in_stock", 60)

    buyers = await flows.new_buyers(3, 1000)
    # Three buyers, one key, ordering at once: every one is delivered the same key.
    placed = await asyncio.gather(*(flows.order(b, loop, idempotency_key=f"loop-{b}") for b in buyers))
    assert [r.status_code for r in placed] == [201, 201, 201], [r.text for r in placed]
    codes = []
    for buyer, r in zip(buyers, placed, strict=True):
        assert (await flows.wait_final(buyer, r.json()["order_id"]))["status"] == "delivered"
        codes += await flows.card_keys(buyer, r.json()["order_id"])
    assert codes == [f"LOOP-{loop[:8]}"] * 3
    # The same key again (a retried request) is the same order, not a fourth delivery.
    again = await flows.order(buyers[0], loop, idempotency_key=f"loop-{buyers[0]}")
    assert again.json()["order_id"] == placed[0].json()["order_id"]
    assert (await product_sku(flows, loop))["stock"] == "in_stock"
    stock = (await flows.call("GET", f"/api/v1/admin/skus/{loop}/stock", headers=flows.admin, expect=200)).json()
    assert stock["available"] == 1 and stock.get("sold", 0) == 0

    # Single keys are unchanged: one key, one sale, then sold out.
    first = await flows.order(buyers[1], single)
    assert first.status_code == 201, first.text
    second = await flows.order(buyers[2], single)
    assert second.status_code == 409 and second.json()["type"].endswith("out-of-stock")
    assert (await flows.wait_final(buyers[1], first.json()["order_id"]))["status"] == "delivered"
    assert await flows.card_keys(buyers[1], first.json()["order_id"]) == [f"ONE-{single[:8]}"]
    # Someone else's order shows no key.
    r = await flows.call("GET", f"/api/v1/orders/{placed[0].json()['order_id']}/card-keys", headers=auth())
    assert r.status_code == 404


async def verified_by_identity(flows: Flows, number: str) -> tuple[str, dict[str, str], int]:
    """A buyer registered and signed in through identity, then verifying `number`: (user id,
    headers, the real-name answer's status)."""
    email = unique_email()
    r = await flows.call("POST", "/api/v1/auth/register", json={"email": email, "password": PASSWORD}, expect=201)
    user_id = r.json()["user_id"]
    tokens = await flows.call("POST", "/api/v1/auth/login", json={"login": email, "password": PASSWORD}, expect=200)
    headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    r = await flows.call("POST", "/api/v1/me/real-name", json={"name": "张三", "id_number": number}, headers=headers)
    return user_id, headers, r.status_code


async def test_a_trial_is_free_and_one_per_person_across_their_accounts(flows: Flows, kafka: AIOKafkaProducer) -> None:
    with pytest.raises(AssertionError, match=r" 422: .*prices"):
        await flows.create_sku(price_cents=100, trial=True)  # a trial is free
    trial = await flows.create_sku(prices={"retail": 0, "vip": 0, "agent": 0}, trial=True)
    await flows.import_keys(trial, [f"TRY-{trial[:8]}-{i}" for i in range(5)])
    # (wait_orderable quotes as an unverified buyer, which a trial refuses: the ordering below
    # retries until the projections have caught up instead.)

    # Through identity: verifying yields the person; the same ID number cannot verify a second
    # account, so that account can never have the trial.
    number = id_number()
    a, a_headers, verified = await verified_by_identity(flows, number)
    assert verified == 200
    _, b_headers, second = await verified_by_identity(flows, number)
    assert second == 409

    async def ordered(headers: dict[str, str], **extra: object) -> httpx.Response:
        body = {"sku_id": trial, "quantity": 1, **extra}
        return await flows.call("POST", "/api/v1/orders", json=body, headers=headers)

    async def a_can_order() -> httpx.Response | None:
        r = await ordered(a_headers)  # until order and wallet have heard of the verified account
        return r if r.status_code == 201 else None

    first = await until(a_can_order, message="the verified buyer's trial")
    assert first.json()["total_cents"] == 0
    assert (await flows.wait_final(a, first.json()["order_id"]))["status"] == "delivered"
    r = await ordered(a_headers)
    assert r.status_code == 422 and "one per person" in r.text
    r = await ordered(b_headers)
    assert r.status_code == 422 and "实名" in r.text

    # Two accounts identity says are one person (the fingerprint on user-verified), ordering at
    # once: one trial between them.
    c, d = await flows.new_buyers(2, 0)
    person = "person-" + new_id()
    for user in (c, d):
        await publish(kafka, UserVerified(user_id=user, verified_at=datetime.now(UTC), person=person))

    async def both_verified() -> bool:
        quotes = [
            await flows.call("POST", "/api/v1/orders/quote", json={"sku_id": trial, "quantity": 1}, headers=auth(u))
            for u in (c, d)
        ]
        return all(q.status_code == 200 for q in quotes)

    await until(both_verified, message="the order service hearing of both verifications")
    r = await ordered(auth(c), quantity=2)
    assert r.status_code == 422 and "one unit" in r.text
    results = await asyncio.gather(ordered(auth(c)), ordered(auth(d)))
    assert sorted(r.status_code for r in results) == [201, 422], [r.text for r in results]


async def test_a_trial_never_received_is_given_back_and_a_delivered_one_is_not(
    flows: Flows, kafka: AIOKafkaProducer
) -> None:
    """A trial order that ends refunded without delivery (the buyer cancelled it, staff had none
    to give) gives the person's claim back, in the transaction that ends the order: the same
    person takes the trial again. Once one is delivered, the trial is theirs for good."""
    trial = await flows.create_sku(prices={"retail": 0, "vip": 0, "agent": 0}, trial=True, delivery_mode="manual")
    [buyer] = await flows.new_buyers(1, 0)
    await publish(kafka, UserVerified(user_id=buyer, verified_at=datetime.now(UTC), person="person-" + new_id()))

    async def placed() -> httpx.Response | None:
        r = await flows.order(buyer, trial)  # until the order service heard of the SKU and the person
        return r if r.status_code == 201 else None

    def refused(r: httpx.Response) -> bool:
        return r.status_code == 422 and "one per person" in r.text

    # 1. Cancelled by the buyer before staff delivered it: refunded (nothing), given back.
    cancelled = (await until(placed, message="the trial orderable")).json()["order_id"]
    await flows.wait_final(buyer, cancelled, final={"delivering"})
    assert refused(await flows.order(buyer, trial))  # the claim is held while the order is open
    r = await flows.call("POST", f"/api/v1/orders/{cancelled}/cancel", headers=auth(buyer), expect=200)
    assert r.json()["result"] == "cancel_requested"
    assert (await flows.wait_final(buyer, cancelled))["status"] == "refunded"

    # 2. The same person takes it again; staff have none to give (out of stock): given back again.
    r = await flows.order(buyer, trial)
    assert r.status_code == 201, r.text
    failed = r.json()["order_id"]
    await flows.wait_final(buyer, failed, final={"delivering"})
    await flows.manual_task(failed, "fail", reason="out of trial accounts")
    assert (await flows.wait_final(buyer, failed))["status"] == "refunded"

    # 3. Taken a third time and delivered: from now on it is refused.
    r = await flows.order(buyer, trial)
    assert r.status_code == 201, r.text
    kept = r.json()["order_id"]
    await flows.wait_final(buyer, kept, final={"delivering"})
    await flows.manual_task(kept, "complete", content="TRIAL-ACCOUNT-1")
    assert (await flows.wait_final(buyer, kept))["status"] == "delivered"
    assert refused(await flows.order(buyer, trial))
    quote = await flows.call("POST", "/api/v1/orders/quote", json={"sku_id": trial, "quantity": 1}, headers=auth(buyer))
    assert refused(quote)


async def test_the_expected_delivery_time_is_shown_measured_and_opens_urging(flows: Flows) -> None:
    with pytest.raises(AssertionError, match=r" (400|422): "):
        await flows.create_sku(eta_seconds=0)
    manual = await flows.create_sku(price_cents=100, delivery_mode="manual", eta_seconds=3)
    auto = await flows.create_sku(price_cents=100, eta_seconds=7200)
    await flows.import_keys(auto, [f"ETA-{auto[:8]}-{i}" for i in range(4)])
    await flows.wait_orderable(auto, 4)
    [buyer] = await flows.new_buyers(1, 2000)
    me = auth(buyer)

    # Staff's ETA: 3 s after payment; 催单 is refused before it and accepted after it.
    async def placed_manual() -> httpx.Response | None:
        r = await flows.order(buyer, manual)
        return r if r.status_code == 201 else None

    order_id = (await until(placed_manual, message="the manual SKU orderable")).json()["order_id"]
    order = await flows.wait_final(buyer, order_id, final={"paid", "delivering"})
    assert order["eta_seconds"] == 3 and order["eta_at"]
    r = await flows.call("POST", f"/api/v1/orders/{order_id}/urge", headers=me)
    assert r.status_code == 409 and r.json()["type"].endswith("cannot-urge"), r.text
    due = datetime.fromisoformat(order["eta_at"].replace("Z", "+00:00"))
    await asyncio.sleep(max((due - datetime.now(UTC)).total_seconds(), 0) + 0.3)
    r = await flows.call("POST", f"/api/v1/orders/{order_id}/urge", headers=me, expect=200)
    assert r.json()["urged"] is True

    # Observed: after a few real deliveries the product and the quote show their p90, and the
    # next order promises it rather than the staff's two hours.
    for _ in range(3):
        r = await flows.order(buyer, auto)
        assert (await flows.wait_final(buyer, r.json()["order_id"]))["status"] == "delivered"

    async def measured() -> dict[str, Any] | None:
        shown = await product_sku(flows, auto)
        return shown if shown.get("eta_observed_seconds") is not None else None

    shown = await until(measured, message="the observed ETA on the product")
    assert shown["eta_seconds"] == 7200 and 0 <= int(shown["eta_observed_seconds"]) <= 60  # type: ignore[call-overload]

    async def quoted() -> dict[str, Any] | None:  # the order service reads it again within seconds
        body = {"sku_id": auto, "quantity": 1}
        q = (await flows.call("POST", "/api/v1/orders/quote", json=body, headers=me, expect=200)).json()
        return q if q["eta_observed_seconds"] is not None else None

    quote = await until(quoted, message="the observed ETA in the quote")
    assert quote["eta_seconds"] == 7200 and quote["eta_observed_seconds"] == shown["eta_observed_seconds"]
    r = await flows.order(buyer, auto)
    assert (await flows.get_order(buyer, r.json()["order_id"]))["eta_seconds"] == shown["eta_observed_seconds"]
