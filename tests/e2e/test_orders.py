"""The order saga end to end through the gateway, on the real stack with every service running:
delivery, idempotency, stock and balance refusals, expiry, crashes and redeliveries."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from deploy.platform import Platform
from shared.contracts import topics
from shared.messaging.scan import header, scan
from tests.flows import Flows
from tests.helpers import auth

PRICE = 1000


@pytest.fixture
async def flows(platform: Platform, infra: dict[str, str]) -> AsyncIterator[Flows]:
    f = Flows(platform.gateway_url, infra["KAFKA_BOOTSTRAP_SERVERS"], concurrency=50)
    yield f
    await f.close()


async def stocked_sku(flows: Flows, keys: int, **sku: object) -> tuple[str, list[str]]:
    sku_id = await flows.create_sku(price_cents=PRICE, **sku)  # type: ignore[arg-type]
    codes = [f"KEY-{sku_id[:8]}-{i:04d}" for i in range(keys)]
    if keys:
        await flows.import_keys(sku_id, codes)
        await flows.wait_orderable(sku_id, keys)
    return sku_id, codes


async def test_paid_order_is_delivered_and_its_keys_shown_only_to_the_owner(flows: Flows) -> None:
    sku_id, codes = await stocked_sku(flows, 3)
    [buyer] = await flows.new_buyers(1, 5 * PRICE)
    placed = await flows.order(buyer, sku_id, 2)
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert body["total_cents"] == 2 * PRICE and body["status"] in ("paid", "delivering", "delivered")
    order = await flows.wait_final(buyer, body["order_id"])
    assert order["status"] == "delivered"
    assert [h["status"] for h in order["history"]] == ["pending_payment", "paid", "delivered"]
    keys = await flows.card_keys(buyer, body["order_id"])
    assert len(keys) == 2 and set(keys) <= set(codes)
    assert await flows.balance(buyer) == 3 * PRICE
    [stranger] = await flows.new_buyers(1, 0)
    snooping = await flows.call("GET", f"/api/v1/orders/{body['order_id']}/card-keys", headers=auth(stranger))
    assert snooping.status_code == 404
    assert (await flows.call("GET", f"/api/v1/orders/{body['order_id']}", headers=auth(stranger))).status_code == 404


async def test_same_idempotency_key_places_one_order(flows: Flows) -> None:
    sku_id, _ = await stocked_sku(flows, 5)
    [buyer] = await flows.new_buyers(1, 5 * PRICE)
    headers = {**auth(buyer), "Idempotency-Key": "checkout-42"}
    body = {"sku_id": sku_id, "quantity": 1}
    answers = await asyncio.gather(
        *(flows.call("POST", "/api/v1/orders", json=body, headers=headers) for _ in range(5))
    )
    assert {a.status_code for a in answers} <= {201, 409}  # 409: the first is still in progress
    answers = [a for a in answers if a.status_code == 201]
    answers.append(await flows.call("POST", "/api/v1/orders", json=body, headers=headers, expect=201))
    assert len({a.json()["order_id"] for a in answers}) == 1
    order_id = answers[0].json()["order_id"]
    await flows.wait_final(buyer, order_id)
    listed = (await flows.call("GET", "/api/v1/orders", headers=auth(buyer), expect=200)).json()
    assert listed["total"] == 1
    assert await flows.balance(buyer) == 4 * PRICE  # debited once
    other = await flows.call("POST", "/api/v1/orders", json={**body, "quantity": 2}, headers=headers)
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")


async def test_out_of_stock_is_409_and_short_balance_is_402(flows: Flows) -> None:
    sku_id, _ = await stocked_sku(flows, 1)
    [rich, poor] = await flows.new_buyers(2, PRICE)
    too_many = await flows.order(rich, sku_id, 2)
    assert too_many.status_code == 409 and too_many.json()["type"].endswith("out-of-stock")
    assert too_many.headers["content-type"].startswith("application/problem+json")
    first = await flows.order(poor, sku_id, 1)
    assert first.status_code == 201
    await flows.wait_final(poor, first.json()["order_id"])
    sku2, _ = await stocked_sku(flows, 2)
    broke = await flows.order(poor, sku2, 1)
    assert broke.status_code == 402 and broke.json()["type"].endswith("insufficient-balance")
    order = await flows.get_order(poor, broke.json()["order_id"])
    assert order["status"] == "cancelled"
    stock = (await flows.call("GET", f"/api/v1/admin/skus/{sku2}/stock", headers=flows.admin, expect=200)).json()
    assert stock["available"] == 2 and stock["reserved"] == 0  # the declined order let go of its key


def kept_hits(platform: Platform) -> float:
    """How many requests the gateway has answered from what it keeps (its metrics port)."""
    text = httpx.get(f"http://127.0.0.1:{platform.ports['gateway_metrics']}/metrics", timeout=10).text
    family = next(f for f in text_string_to_metric_families(text) if f.name == "kameng_gateway_kept_answers")
    return sum(s.value for s in family.samples if s.name.endswith("_total") and s.labels["outcome"] == "hit")


async def test_sold_out_refusals_are_answered_at_the_gateway_and_stop_the_moment_keys_arrive(
    flows: Flows, platform: Platform
) -> None:
    """Decision 35: the order service's out-of-stock 409 names the stock counters it was decided
    on; the gateway answers the same request again itself while they read the same, for every
    buyer (no rule about the buyer applies to this SKU), and records it under a new
    Idempotency-Key like any answer. An import moves the counters: the next order goes through."""
    sku_id, _ = await stocked_sku(flows, 1)
    [first, second] = await flows.new_buyers(2, 3 * PRICE)
    sold = await flows.order(first, sku_id, 1)
    assert sold.status_code == 201
    await flows.wait_final(first, sold.json()["order_id"])
    before = kept_hits(platform)
    answers = [await flows.order(buyer, sku_id, 1) for buyer in (first, second, second, first)]
    assert [(r.status_code, r.json()["type"].rsplit("/", 1)[-1]) for r in answers] == [(409, "out-of-stock")] * 4
    assert len({r.content for r in answers}) == 1
    with_key = await flows.order(second, sku_id, 1, idempotency_key="sold-out-1")
    again = await flows.order(second, sku_id, 1, idempotency_key="sold-out-1")
    assert with_key.status_code == again.status_code == 409 and again.content == with_key.content
    assert again.headers.get("idempotent-replayed") == "true"
    assert kept_hits(platform) - before >= 3  # the first refusal was the service's; the rest were kept
    assert "x-kameng-edge-cache" not in answers[-1].headers  # the declaration never leaves the gateway

    await flows.import_keys(sku_id, [f"KEY-{sku_id[:8]}-more"])
    await flows.wait_orderable(sku_id, 1)
    placed = await flows.order(second, sku_id, 1)
    assert placed.status_code == 201, placed.text
    assert (await flows.wait_final(second, placed.json()["order_id"]))["status"] == "delivered"
    # The same key's replay is still its first answer: nothing was placed under it.
    replay = await flows.order(second, sku_id, 1, idempotency_key="sold-out-1")
    assert replay.status_code == 409 and replay.content == with_key.content


async def test_bad_orders_are_422_with_fields(flows: Flows) -> None:
    sku_id, _ = await stocked_sku(
        flows,
        0,
        recipient_fields=[{"name": "mobile", "label": "手机号", "required": True, "pattern": r"1[3-9]\d{9}"}],
        delivery_mode="direct",
    )
    [buyer] = await flows.new_buyers(1, PRICE)
    for body, field in [
        ({"sku_id": sku_id, "quantity": 1, "recipient": {"mobile": "123"}}, "recipient.mobile"),
        ({"sku_id": sku_id, "quantity": 1}, "recipient.mobile"),
        ({"sku_id": "no-such-sku", "quantity": 1}, "sku_id"),
        ({"sku_id": sku_id, "quantity": 0, "recipient": {"mobile": "13800138000"}}, "quantity"),
    ]:
        r = await flows.call("POST", "/api/v1/orders", json=body, headers=auth(buyer))
        assert r.status_code == 422, r.text
        assert field in {e["field"] for e in r.json()["errors"]}
    quote = await flows.call(
        "POST",
        "/api/v1/orders/quote",
        headers=auth(buyer),
        expect=200,
        json={"sku_id": sku_id, "quantity": 2, "recipient": {"mobile": "13800138000"}},
    )
    assert quote.json()["recipient_notes"] == {"mobile.carrier": "中国移动"}
    assert quote.json()["total_cents"] == 2 * PRICE
    assert (await flows.call("GET", "/api/v1/orders", headers=auth(buyer), expect=200)).json()["total"] == 0


async def test_duplicate_order_paid_delivers_once(flows: Flows, infra: dict[str, str]) -> None:
    sku_id, _ = await stocked_sku(flows, 4)
    [buyer] = await flows.new_buyers(1, PRICE)
    order_id = (await flows.order(buyer, sku_id, 1)).json()["order_id"]
    await flows.wait_final(buyer, order_id)
    bootstrap = infra["KAFKA_BOOTSTRAP_SERVERS"]
    paid = [
        r
        for r in await scan(bootstrap, [topics.ORDER])
        if header(r, "event_type") == "order.paid" and r.key == order_id.encode()
    ]
    assert len(paid) == 1
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for _ in range(3):
            await producer.send_and_wait(topics.ORDER, paid[0].value, key=paid[0].key, headers=list(paid[0].headers))
    finally:
        await producer.stop()
    await asyncio.sleep(2)
    assert len(await flows.card_keys(buyer, order_id)) == 1
    stock = (await flows.call("GET", f"/api/v1/admin/skus/{sku_id}/stock", headers=flows.admin, expect=200)).json()
    assert stock["sold"] == 1 and stock["available"] == 3


async def test_fulfilment_killed_mid_delivery_delivers_each_order_once(flows: Flows, platform: Platform) -> None:
    sku_id, _ = await stocked_sku(flows, 6)
    buyers = await flows.new_buyers(3, PRICE)
    platform.restart("fulfilment", {"KAMENG_FAILPOINTS": "fulfilment.after-claim"})
    try:
        orders = [(await flows.order(b, sku_id, 1)).json()["order_id"] for b in buyers]
        await asyncio.to_thread(_wait_dead, platform, "fulfilment")
    finally:
        platform.restart("fulfilment")  # without the fail point: picks up where the dead one stopped
    finals = await asyncio.gather(*(flows.wait_final(b, o) for b, o in zip(buyers, orders, strict=True)))
    assert {o["status"] for o in finals} == {"delivered"}
    keys = [k for b, o in zip(buyers, orders, strict=True) for k in await flows.card_keys(b, o)]
    assert len(keys) == 3 and len(set(keys)) == 3
    stock = (await flows.call("GET", f"/api/v1/admin/skus/{sku_id}/stock", headers=flows.admin, expect=200)).json()
    assert stock["sold"] == 3 and stock["available"] == 3


def _wait_dead(platform: Platform, name: str, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while platform.processes[name].alive():
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} did not hit its fail point")
        time.sleep(0.1)


async def test_orders_placed_while_the_wallet_is_down_complete_when_it_returns(
    flows: Flows, platform: Platform
) -> None:
    sku_id, _ = await stocked_sku(flows, 2)
    buyers = await flows.new_buyers(2, PRICE)
    platform.restart("order", {"PLACE_WAIT_SECONDS": "0.5"})
    platform.stop_service("wallet")
    try:
        placed = [await flows.order(b, sku_id, 1) for b in buyers]
        assert [p.status_code for p in placed] == [201, 201]
        assert {p.json()["status"] for p in placed} == {"pending_payment"}
    finally:
        platform.restart("wallet")
        platform.restart("order")
    finals = await asyncio.gather(
        *(flows.wait_final(b, p.json()["order_id"]) for b, p in zip(buyers, placed, strict=True))
    )
    assert {o["status"] for o in finals} == {"delivered"}


async def test_unpaid_orders_expire_release_stock_and_late_payments_are_refunded(
    flows: Flows, platform: Platform
) -> None:
    sku_id, _ = await stocked_sku(flows, 1)
    [buyer] = await flows.new_buyers(1, PRICE)
    platform.restart(
        "order", {"PAYMENT_TIMEOUT_MINUTES": "0.02", "EXPIRY_SWEEP_SECONDS": "0.3", "PLACE_WAIT_SECONDS": "0.2"}
    )
    platform.stop_service("wallet")
    try:
        order_id = (await flows.order(buyer, sku_id, 1)).json()["order_id"]
        expired = await flows.wait_final(buyer, order_id, final={"expired"})
        assert expired["status"] == "expired"
        stock = (await flows.call("GET", f"/api/v1/admin/skus/{sku_id}/stock", headers=flows.admin, expect=200)).json()
        assert stock["reserved"] == 0 and stock["available"] == 1  # the key is for sale again
    finally:
        platform.restart("wallet")  # now it takes the payment that was waiting on the bus...
        platform.restart("order")
    final = await flows.wait_final(buyer, order_id, final={"refunded"})  # ...and gives it back
    assert [h["status"] for h in final["history"]][-3:] == ["expired", "refunding", "refunded"]
    assert await flows.balance(buyer) == PRICE


async def test_buyer_cancels_an_unpaid_or_undelivered_order(flows: Flows) -> None:
    sku_id, _ = await stocked_sku(flows, 0, delivery_mode="manual")
    [buyer] = await flows.new_buyers(1, 2 * PRICE)
    order_id = (await flows.order(buyer, sku_id, 1)).json()["order_id"]
    await flows.wait_final(buyer, order_id, final={"delivering"})
    cancelled = await flows.call("POST", f"/api/v1/orders/{order_id}/cancel", headers=auth(buyer), expect=200)
    assert cancelled.json()["result"] == "cancel_requested"
    final = await flows.wait_final(buyer, order_id, final={"refunded"})
    assert final["status"] == "refunded"
    assert await flows.balance(buyer) == 2 * PRICE
    again = await flows.call("POST", f"/api/v1/orders/{order_id}/cancel", headers=auth(buyer))
    assert again.status_code == 409


async def test_manual_delivery_by_staff_and_urging(flows: Flows) -> None:
    sku_id, _ = await stocked_sku(flows, 0, delivery_mode="manual")
    [buyer] = await flows.new_buyers(1, 2 * PRICE)
    done_id = (await flows.order(buyer, sku_id, 1)).json()["order_id"]
    failed_id = (await flows.order(buyer, sku_id, 1)).json()["order_id"]
    await flows.wait_final(buyer, failed_id, final={"delivering"})
    await asyncio.sleep(1.5)  # URGE_WAIT_MINUTES is shortened in tests
    urge = await flows.call("POST", f"/api/v1/orders/{done_id}/urge", headers=auth(buyer), expect=200)
    assert urge.json()["urged"] is True
    too_soon = await flows.call("POST", f"/api/v1/orders/{done_id}/urge", headers=auth(buyer))
    assert too_soon.status_code == 409
    queue = (await flows.call("GET", "/api/v1/admin/manual-tasks", headers=flows.admin, expect=200)).json()
    assert {done_id, failed_id} <= {t["task_id"] for t in queue}
    assert (await flows.call("GET", "/api/v1/admin/manual-tasks", headers=auth(buyer))).status_code == 403
    await flows.manual_task(done_id, "complete", content="ACCOUNT-7788")
    twice = await flows.manual_task(done_id, "complete", expect=None, content="X")
    assert twice.status_code == 409
    await flows.manual_task(failed_id, "fail", reason="out of cards")
    assert (await flows.wait_final(buyer, done_id))["status"] == "delivered"
    assert await flows.card_keys(buyer, done_id) == ["ACCOUNT-7788"]
    assert (await flows.wait_final(buyer, failed_id))["status"] == "refunded"
    assert await flows.balance(buyer) == PRICE


async def test_direct_top_up_succeeds_retries_and_refunds(flows: Flows) -> None:
    sku_id, _ = await stocked_sku(
        flows, 0, delivery_mode="direct", recipient_fields=[{"name": "account", "label": "游戏账号", "required": True}]
    )
    [buyer] = await flows.new_buyers(1, 3 * PRICE)
    ok = (await flows.order(buyer, sku_id, 1, recipient={"account": "player-1"})).json()["order_id"]
    lost = (await flows.order(buyer, sku_id, 1, recipient={"account": "lost-callback-2"})).json()["order_id"]
    failing = (await flows.order(buyer, sku_id, 1, recipient={"account": "always-fail-3"})).json()["order_id"]
    assert (await flows.wait_final(buyer, ok))["status"] == "delivered"
    assert (await flows.wait_final(buyer, lost))["status"] == "delivered"  # found by polling the supplier
    refunded = await flows.wait_final(buyer, failing)
    assert refunded["status"] == "refunded"
    assert "supplier failed after 3 attempts" in " ".join(h.get("reason") or "" for h in refunded["history"])
    assert await flows.balance(buyer) == PRICE


async def test_batch_order_from_a_sheet_is_paid_in_one_payment(flows: Flows) -> None:
    sku_id, _ = await stocked_sku(flows, 5)
    [buyer] = await flows.new_buyers(1, 3 * PRICE)
    sheet = f"sku_id,quantity\n{sku_id},1\n{sku_id},two\n{sku_id},2\nno-such-sku,1\n".encode()
    r = await flows.call(
        "POST",
        "/api/v1/orders/batch",
        headers=auth(buyer),
        expect=201,
        files={"file": ("batch.csv", sheet, "text/csv")},
        data={"save_as_template": "weekly"},
    )
    batch = r.json()
    assert batch["accepted"] == 2 and batch["total_cents"] == 3 * PRICE
    assert [x["row"] for x in batch["rejected"]] == [3, 5]
    finals = await asyncio.gather(*(flows.wait_final(buyer, o) for o in batch["order_ids"]))
    assert {o["status"] for o in finals} == {"delivered"}
    assert await flows.balance(buyer) == 0
    ledger = (await flows.call("GET", "/api/v1/wallet/ledger", headers=auth(buyer), expect=200)).json()
    debits = [e for e in ledger["items"] if e["amount_cents"] < 0]
    assert len(debits) == 1 and debits[0]["amount_cents"] == -3 * PRICE  # one payment for the batch
    templates = (await flows.call("GET", "/api/v1/orders/templates", headers=auth(buyer), expect=200)).json()
    assert templates[0]["name"] == "weekly" and len(templates[0]["rows"]) == 3
    rerun = await flows.call("POST", f"/api/v1/orders/templates/{templates[0]['template_id']}/run", headers=auth(buyer))
    assert rerun.status_code == 402  # the balance is spent: the whole batch is refused, not half of it


async def test_order_center_groups(flows: Flows) -> None:
    sku_id, _ = await stocked_sku(flows, 2)
    [buyer] = await flows.new_buyers(1, PRICE)
    done = (await flows.order(buyer, sku_id, 1)).json()["order_id"]
    await flows.wait_final(buyer, done)
    declined = (await flows.order(buyer, sku_id, 1)).json()["order_id"]
    completed = (await flows.call("GET", "/api/v1/orders?group=completed", headers=auth(buyer), expect=200)).json()
    closed = (await flows.call("GET", "/api/v1/orders?group=closed", headers=auth(buyer), expect=200)).json()
    assert [o["order_id"] for o in completed["items"]] == [done]
    assert [o["order_id"] for o in closed["items"]] == [declined]
    bad = await flows.call("GET", "/api/v1/orders?status=shipped", headers=auth(buyer))
    assert bad.status_code == 422


async def test_keys_short_at_delivery_despite_the_hold_are_refunded_never_partly_delivered(
    flows: Flows, platform: Platform
) -> None:
    sku_id, codes = await stocked_sku(flows, 2)
    [buyer] = await flows.new_buyers(1, 2 * PRICE)
    platform.restart("order", {"PLACE_WAIT_SECONDS": "0.2"})
    platform.stop_service("wallet")  # the order waits for payment with both keys held...
    try:
        order_id = (await flows.order(buyer, sku_id, 2)).json()["order_id"]
        # ...while staff void one of them (a supplier's void list): the vault is now short.
        voided = await flows.call(
            "POST",
            f"/api/v1/admin/skus/{sku_id}/card-keys/disable",
            headers=flows.admin,
            json={"codes": [codes[0]]},
            expect=200,
        )
        assert voided.json()["disabled"] == [0]
    finally:
        platform.restart("wallet")
        platform.restart("order")
    final = await flows.wait_final(buyer, order_id)
    assert final["status"] == "refunded"
    assert "only 1 of 2 card keys left" in " ".join(h.get("reason") or "" for h in final["history"])
    keys = await flows.call("GET", f"/api/v1/orders/{order_id}/card-keys", headers=auth(buyer), expect=200)
    assert keys.json()["card_keys"] == []  # nothing handed out, not one of the two
    assert await flows.balance(buyer) == 2 * PRICE
    stock = (await flows.call("GET", f"/api/v1/admin/skus/{sku_id}/stock", headers=flows.admin, expect=200)).json()
    assert (stock["available"], stock["sold"], stock["reserved"]) == (1, 0, 0)  # the good key is for sale again


async def test_integers_past_64_bits_are_a_422_and_store_nothing(flows: Flows) -> None:
    """Found by the fuzz run: a template row with quantity 2**64 reached the BSON encoder (500)."""
    [buyer] = await flows.new_buyers(1, PRICE)
    huge = 22187849515665313792
    template = {"name": "huge", "rows": [{"sku_id": "x", "quantity": huge}]}
    answer = await flows.call("POST", "/api/v1/orders/templates", headers=auth(buyer), json=template)
    assert answer.status_code == 422 and answer.headers["content-type"].startswith("application/problem+json")
    order = await flows.call("POST", "/api/v1/orders", headers=auth(buyer), json={"sku_id": "x", "quantity": huge})
    assert order.status_code == 422
    topup = {"amount_cents": huge, "channel": "alipay"}
    assert (await flows.call("POST", "/api/v1/wallet/topups", headers=auth(buyer), json=topup)).status_code == 422
    templates = (await flows.call("GET", "/api/v1/orders/templates", headers=auth(buyer), expect=200)).json()
    assert templates == []


async def test_staff_find_any_order_with_its_buyer_and_trace_id(flows: Flows) -> None:
    sku_id, _ = await stocked_sku(flows, 1)
    [buyer] = await flows.new_buyers(1, PRICE)
    trace_id = secrets.token_hex(16)
    headers = {**auth(buyer), "traceparent": f"00-{trace_id}-b7ad6b7169203331-01"}
    placed = await flows.call("POST", "/api/v1/orders", json={"sku_id": sku_id}, headers=headers, expect=201)
    order_id = placed.json()["order_id"]
    await flows.wait_final(buyer, order_id)

    staff = auth(roles=("staff",))
    seen = (await flows.call("GET", f"/api/v1/admin/orders/{order_id}", headers=staff, expect=200)).json()
    assert seen["user_id"] == buyer and seen["trace_id"] == trace_id and seen["status"] == "delivered"
    mine = await flows.call("GET", f"/api/v1/admin/orders?user_id={buyer}&group=completed", headers=staff, expect=200)
    assert [o["order_id"] for o in mine.json()["items"]] == [order_id]
    assert "trace_id" not in await flows.get_order(buyer, order_id)  # the buyer's own view stays as it was
    assert (await flows.call("GET", "/api/v1/admin/orders", headers=auth(buyer))).status_code == 403
    assert (await flows.call("GET", "/api/v1/admin/orders?group=nope", headers=staff)).status_code == 422
