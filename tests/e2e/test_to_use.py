"""待使用 and 订单到期提醒 end to end on the real stack: delivered card keys are in the order
center's `to_use` group until their owner first reveals them (the order then shows `revealed_at`,
recorded once however often they look again), and an order whose keys were never revealed gets
one reminder, in-app and by email, `KEY_REMINDER_DAYS` (3) before they expire."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from deploy.platform import Platform
from tests.flows import Flows
from tests.helpers import auth, eventually

# Scheduled runs and reminder sweeps take a few ticks: a longer wait than the default.
until = functools.partial(eventually, timeout=40)


@pytest.fixture
async def flows(platform: Platform, infra: dict[str, str]) -> AsyncIterator[Flows]:
    f = Flows(platform.gateway_url, infra["KAFKA_BOOTSTRAP_SERVERS"], concurrency=10)
    yield f
    await f.close()


async def stocked(flows: Flows, validity_days: int, keys: int) -> str:
    sku_id = await flows.create_sku(price_cents=300, validity_days=validity_days)
    await flows.import_keys(sku_id, [f"TU-{sku_id[:8]}-{i}" for i in range(keys)])
    await flows.wait_orderable(sku_id, keys)
    return sku_id


async def test_to_use_until_revealed_and_one_reminder_before_unrevealed_keys_expire(
    flows: Flows, platform: Platform
) -> None:
    lasting = await stocked(flows, validity_days=30, keys=2)  # outside the reminder window
    expiring = await stocked(flows, validity_days=1, keys=1)  # inside it from the start
    [buyer] = await flows.new_buyers(1, 2000)
    me = auth(buyer)

    placed = [await flows.order(buyer, sku) for sku in (lasting, lasting, expiring)]
    a, b, c = [r.json()["order_id"] for r in placed]
    for order_id in (a, b, c):
        assert (await flows.wait_final(buyer, order_id))["status"] == "delivered"

    async def to_use() -> set[str]:
        r = await flows.call("GET", "/api/v1/orders", headers=me, params={"group": "to_use"}, expect=200)
        return {o["order_id"] for o in r.json()["items"]}

    assert await to_use() == {a, b, c}
    r = await flows.call("GET", "/api/v1/orders", headers=me, params={"group": "to_see"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")

    # Someone else's look reveals nothing and records nothing.
    await flows.call("GET", f"/api/v1/orders/{a}/card-keys", headers=auth(), expect=404)
    first = (await flows.call("GET", f"/api/v1/orders/{a}/card-keys", headers=me, expect=200)).json()
    again = (await flows.call("GET", f"/api/v1/orders/{a}/card-keys", headers=me, expect=200)).json()
    assert first["revealed_at"] and again["revealed_at"] == first["revealed_at"]

    async def left_to_use() -> bool:
        return await to_use() == {b, c}

    await until(left_to_use, message="order a leaving 待使用")
    order_a = await flows.get_order(buyer, a)
    assert order_a["revealed_at"] is not None
    assert order_a["revealed_at"][:19] == first["revealed_at"][:19]
    assert (await flows.get_order(buyer, b))["revealed_at"] is None

    # c's key expires in a day and was never revealed: one reminder, in-app and by email.
    async def reminded() -> list[dict[str, Any]]:
        r = await flows.call("GET", "/api/v1/notifications", headers=me, params={"page_size": 100}, expect=200)
        return [n for n in r.json()["items"] if n["kind"] == "order.keys-expiring"]

    [notice] = await until(reminded, message="the expiry reminder")
    assert c[:12] in notice["subject"] and "TU-" not in notice["body"]

    async def mailed() -> list[dict[str, Any]]:
        r = await asyncio.to_thread(
            httpx.get, platform.url("mailsink") + "/messages", params={"to": f"{buyer}@buyers.test"}
        )
        return [m for m in r.json() if c[:12] in m["subject"] and "expire" in m["subject"]]

    [mail] = await until(mailed, message="the reminder email")
    assert "TU-" not in mail["body"]
    await asyncio.sleep(2.5)  # two more sweeps: still one reminder, none for a or b
    assert len(await reminded()) == 1 and len(await mailed()) == 1


async def test_buyers_of_a_reusable_key_that_expires_soon_are_reminded_once(flows: Flows) -> None:
    """A reusable (循环) key stays available for the next buyer, so it is never a sold key; each
    of its buyers is still reminded once before it expires. (That a revealed key is never
    reminded is the unit test's: here the sweep may run before any reveal.)"""
    loop = await flows.create_sku(price_cents=300, key_mode="reusable", validity_days=1)
    await flows.import_keys(loop, [f"TU-LOOP-{loop[:8]}"])
    await flows.wait_orderable(loop, 1)
    buyers = await flows.new_buyers(2, 2000)
    orders = {}
    for buyer in buyers:
        orders[buyer] = (await flows.order(buyer, loop)).json()["order_id"]
        assert (await flows.wait_final(buyer, orders[buyer]))["status"] == "delivered"

    async def reminded(buyer: str) -> list[dict[str, Any]]:
        r = await flows.call("GET", "/api/v1/notifications", headers=auth(buyer), params={"page_size": 100}, expect=200)
        return [n for n in r.json()["items"] if n["kind"] == "order.keys-expiring"]

    for buyer in buyers:
        [notice] = await until(functools.partial(reminded, buyer), message="the reusable key's reminder")
        assert orders[buyer][:12] in notice["subject"] and "TU-LOOP" not in notice["body"]
    await asyncio.sleep(2.5)  # more sweeps: still one reminder each
    assert [len(await reminded(buyer)) for buyer in buyers] == [1, 1]
    # The key is still the next buyer's: reminding took nothing out of stock.
    stock = (await flows.call("GET", f"/api/v1/admin/skus/{loop}/stock", headers=flows.admin, expect=200)).json()
    assert stock["available"] == 1
