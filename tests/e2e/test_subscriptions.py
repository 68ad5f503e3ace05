"""Scheduled orders (自动充值) end to end on the real stack, with the scheduler's clock sped up
(`SUBSCRIPTION_PERIOD_SECONDS=3` in the test platform): each run places exactly one order paid
from the balance, under the Idempotency-Key `subscription:{id}:{run}`; a run the balance cannot
pay fails, is recorded, and is told to the owner in-app and by email, once; bad input is 422,
a repeated key the same subscription, someone else's subscription 404."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from deploy.platform import Platform
from shared.contracts.envelope import new_id
from tests.flows import Flows
from tests.helpers import auth, eventually

PRICE = 1500

# Scheduled runs and reminder sweeps take a few ticks: a longer wait than the default.
until = functools.partial(eventually, timeout=40)


@pytest.fixture
async def flows(platform: Platform, infra: dict[str, str]) -> AsyncIterator[Flows]:
    f = Flows(platform.gateway_url, infra["KAFKA_BOOTSTRAP_SERVERS"], concurrency=10)
    yield f
    await f.close()


async def test_each_run_places_one_order_and_a_failed_run_is_told_once(flows: Flows, platform: Platform) -> None:
    sku_id = await flows.create_sku(price_cents=PRICE)
    await flows.import_keys(sku_id, [f"SUB-{sku_id[:8]}-{i}" for i in range(6)])
    await flows.wait_orderable(sku_id, 6)
    [buyer] = await flows.new_buyers(1, 2 * PRICE)  # two runs' worth
    me = auth(buyer)
    body = {"sku_id": sku_id, "quantity": 1, "every": "month", "day": 1, "hour": 9}

    # Bad input: each field named, nothing created.
    bad = [
        ({**body, "every": "day"}, "every"),
        ({**body, "day": 32}, "day"),
        ({**body, "every": "week", "day": 8}, "day"),
        ({**body, "hour": 24}, "hour"),
        ({**body, "sku_id": "no-such-sku"}, "sku_id"),
        ({**body, "quantity": 0}, "quantity"),
    ]
    for wrong, field in bad:
        r = await flows.call("POST", "/api/v1/subscriptions", json=wrong, headers=me)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in r.json()["errors"]], (field, r.text)
    r = await flows.call("POST", "/api/v1/subscriptions", json={**body, "day": 2**70}, headers=me)
    assert r.status_code in (400, 422) and r.headers["content-type"].startswith("application/problem+json")

    # Created once for a repeated key; the same key with another body is refused.
    keyed = {**me, "Idempotency-Key": new_id()}
    first = (await flows.call("POST", "/api/v1/subscriptions", json=body, headers=keyed, expect=201)).json()
    again = (await flows.call("POST", "/api/v1/subscriptions", json=body, headers=keyed, expect=201)).json()
    sub_id = first["subscription_id"]
    assert again["subscription_id"] == sub_id and first["next_run_at"]
    r = await flows.call("POST", "/api/v1/subscriptions", json={**body, "hour": 10}, headers=keyed)
    assert r.status_code == 422 and r.json()["type"].endswith("idempotency-key-reused")

    # Someone else neither sees nor stops it.
    other = auth(new_id())
    await flows.call("GET", f"/api/v1/subscriptions/{sub_id}", headers=other, expect=404)
    await flows.call("DELETE", f"/api/v1/subscriptions/{sub_id}", headers=other, expect=404)
    assert (await flows.call("GET", "/api/v1/subscriptions", headers=other, expect=200)).json()["items"] == []

    # Runs 1 and 2 are paid from the balance; run 3 finds it empty, fails and is told.
    async def three_runs() -> dict[str, Any] | None:
        sub = (await flows.call("GET", f"/api/v1/subscriptions/{sub_id}", headers=me, expect=200)).json()
        return sub if len(sub["runs"]) >= 3 else None

    sub = await until(three_runs, message="three runs")
    await flows.call("DELETE", f"/api/v1/subscriptions/{sub_id}", headers=me, expect=204)
    await asyncio.sleep(1)  # a run that was placing when it stopped finishes
    await flows.call("DELETE", f"/api/v1/subscriptions/{sub_id}", headers=me, expect=204)
    runs = sub["runs"][:3]
    assert [r["run"] for r in runs] == [1, 2, 3]
    assert [r["outcome"] for r in runs] == ["ok", "ok", "failed"], runs
    assert runs[2]["reason"] == "insufficient-balance" and sub["failures"] >= 1

    # Exactly one order per run, each the run's own (the scheduler ticks twice a second, far more
    # often than runs come, and every tick of a run finds its order again).
    final = (await flows.call("GET", f"/api/v1/subscriptions/{sub_id}", headers=me, expect=200)).json()
    orders = (await flows.call("GET", "/api/v1/orders", headers=me, params={"page_size": 50}, expect=200)).json()
    by_id = {o["order_id"]: o for o in orders["items"]}
    run_orders = [r["order_id"] for r in final["runs"]]
    assert len(set(run_orders)) == len(run_orders) and set(run_orders) == set(by_id), (run_orders, list(by_id))
    assert all(by_id[o]["status"] in ("paid", "delivering", "delivered") for o in run_orders[:2])
    assert by_id[run_orders[2]]["status"] == "cancelled"
    assert await flows.balance(buyer) == 0

    # Each failed run is told once, in-app and by email.
    failed_runs = [r["run"] for r in final["runs"] if r["outcome"] == "failed"]

    async def told() -> list[dict[str, Any]] | None:
        r = await flows.call("GET", "/api/v1/notifications", headers=me, params={"page_size": 100}, expect=200)
        notices = [n for n in r.json()["items"] if n["kind"] == "subscription.failed"]
        return notices if len(notices) >= len(failed_runs) else None

    notices = await until(told, message="the failure notices")
    assert sorted(n["subject"] for n in notices) == sorted(
        f"Scheduled order {sub_id[:12]} could not be placed (run {run})" for run in failed_runs
    )

    async def mailed() -> list[dict[str, Any]]:
        r = await asyncio.to_thread(
            httpx.get, platform.url("mailsink") + "/messages", params={"to": f"{buyer}@buyers.test"}
        )
        return [m for m in r.json() if "Scheduled order" in m["subject"]]

    mails = await until(mailed, message="the failure email")
    assert any("balance" in m["body"] for m in mails)

    # Stopped: no more runs.
    stopped = len((await flows.call("GET", f"/api/v1/subscriptions/{sub_id}", headers=me)).json()["runs"])
    await asyncio.sleep(3.5)
    after = (await flows.call("GET", f"/api/v1/subscriptions/{sub_id}", headers=me)).json()
    assert after["status"] == "cancelled" and len(after["runs"]) == stopped
    assert (await flows.call("GET", "/api/v1/subscriptions", headers=me)).json()["items"] == []
