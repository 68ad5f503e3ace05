"""The partner feed end to end, through the gateway with every service running: two partners
place orders with signed requests; each reads its own topic (the quickstart's aiokafka consumer,
examples/partner/) and sees exactly its own events, in order per order, and none of the other's;
a replay delivers the same event ids again, applied once; the quickstart's webhook receiver
applies the signed deliveries once and refuses a forged one."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from deploy.platform import Platform
from examples.partner.consumer import FeedConsumer, OrderBook
from examples.partner.kameng_api import PartnerApi
from examples.partner.webhook_receiver import WebhookReceiver
from shared.contracts.envelope import new_id
from tests.e2e.identity_kit import signed_headers
from tests.flows import FINAL, Flows
from tests.helpers import auth, eventually

PRICE = 700
PASSWORD = "correct horse battery"


@dataclass
class Partner:
    user_id: str
    key_id: str
    secret: str
    feed: dict[str, str]
    book: OrderBook
    consumer: FeedConsumer
    hook_book: OrderBook
    receiver: WebhookReceiver
    orders: list[str]


@pytest.fixture
async def flows(platform: Platform, infra: dict[str, str]) -> AsyncIterator[Flows]:
    f = Flows(platform.gateway_url, infra["KAFKA_BOOTSTRAP_SERVERS"], concurrency=20)
    yield f
    await f.close()


async def signed(api: httpx.AsyncClient, p: Partner, method: str, path: str, body: Any = None, **headers: str) -> Any:
    raw = b"" if body is None else json.dumps(body).encode()
    sig = signed_headers(p.key_id, p.secret, method, path, raw)
    return await api.request(method, path, content=raw, headers={**sig, "content-type": "application/json", **headers})


async def new_partner(api: httpx.AsyncClient, flows: Flows, platform: Platform) -> Partner:
    """A real account (identity), funded, with an API key: its topic is opened by the key."""
    email = f"p{new_id()[:12]}@partners.test"
    r = await api.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    user_id = r.json()["user_id"]
    token = (await api.post("/api/v1/auth/login", json={"login": email, "password": PASSWORD})).json()["access_token"]
    key = await api.post("/api/v1/me/api-keys", json={"name": "erp"}, headers={"Authorization": f"Bearer {token}"})
    assert key.status_code == 201, key.text

    async def opened() -> bool:
        return await flows.balance(user_id) is not None

    await eventually(opened, message="wallet account", timeout=60)
    await flows.fund(user_id, 10 * PRICE)
    sample = PartnerApi(platform.gateway_url, key.json()["key_id"], key.json()["secret"])  # the quickstart's signing

    async def feed() -> dict[str, str] | None:
        r = await asyncio.to_thread(sample.get, "/api/v1/partner/feed")
        return r.json() if r.status_code == 200 else None

    info = await eventually(feed, message="partner feed opened by the first API key")
    sample.close()
    book, hook_book = OrderBook(), OrderBook()
    return Partner(
        user_id=user_id,
        key_id=key.json()["key_id"],
        secret=key.json()["secret"],
        feed=info,
        book=book,
        consumer=FeedConsumer(info, book, name="e2e"),
        hook_book=hook_book,
        receiver=WebhookReceiver(hook_book).start(),
        orders=[],
    )


async def read_until(partners: list[Partner], done: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, {p.user_id: p.book.status for p in partners}
        for p in partners:
            await p.consumer.poll(300)


async def test_each_partner_reads_only_its_own_events_can_replay_them_and_gets_signed_webhooks(
    api: httpx.AsyncClient, flows: Flows, platform: Platform, infra: dict[str, str]
) -> None:
    started = datetime.now(UTC)
    sku_id = await flows.create_sku(price_cents=PRICE)
    await flows.import_keys(sku_id, [f"PF-{sku_id[:8]}-{i:03d}" for i in range(6)])
    await flows.wait_orderable(sku_id, 6)
    a, b = [await new_partner(api, flows, platform) for _ in range(2)]
    partners = [a, b]
    assert a.feed == {
        "topic": f"partner.{a.user_id}.order-events.v1",
        "bootstrap_servers": infra["KAFKA_BOOTSTRAP_SERVERS"],
        "consumer_group_prefix": f"partner.{a.user_id}.",
        "schema_url": a.feed["schema_url"],
    }
    assert b.feed["topic"] == f"partner.{b.user_id}.order-events.v1"
    schema = await signed(api, a, "GET", a.feed["schema_url"])
    assert schema.status_code == 200 and {"event_id", "order_id", "status"} <= set(
        schema.json()["$defs"]["PartnerOrderEvent"]["required"]
    )
    # A buyer without an API key has no feed.
    assert (await api.get("/api/v1/partner/feed", headers=auth())).status_code == 404

    try:
        for p in partners:
            await p.consumer.start()
            hook = await signed(
                api, p, "POST", "/api/v1/partner/webhooks", {"url": p.receiver.url, "events": ["order.status-changed"]}
            )
            assert hook.status_code == 201, hook.text
            p.receiver.secret = hook.json()["secret"]

        for n in range(2):
            for p in partners:
                placed = await signed(
                    api, p, "POST", "/api/v1/orders", {"sku_id": sku_id, "quantity": 1}, **{"Idempotency-Key": f"o{n}"}
                )
                assert placed.status_code == 201, placed.text
                p.orders.append(placed.json()["order_id"])
        histories = {
            o: [h["status"] for h in (await flows.wait_final(p.user_id, o))["history"]]
            for p in partners
            for o in p.orders
        }
        assert all(h[-1] in FINAL for h in histories.values())

        def all_final() -> bool:
            return all(p.book.status.get(o) == histories[o][-1] for p in partners for o in p.orders)

        await read_until(partners, all_final)
        await asyncio.sleep(1.0)
        for p in partners:
            await p.consumer.poll(500)  # and nothing more arrives

        for p in partners:
            other = b if p is a else a
            events = p.consumer.received
            # exactly its own events: every change of each of its orders, in order, once
            assert {e["partner_user_id"] for e in events} == {p.user_id}
            assert {e["order_id"] for e in events} == set(p.orders)
            for o in p.orders:
                assert [e["status"] for e in events if e["order_id"] == o] == histories[o]
            assert len({e["event_id"] for e in events}) == len(events)
            assert not {e["order_id"] for e in events} & set(other.orders)

        # The webhook got the same events, signed, each applied once.
        await eventually(
            lambda: _ready(all(set(p.hook_book.seen) == set(p.book.seen) for p in partners)),
            message="webhook deliveries",
        )
        assert all(p.receiver.rejected == 0 for p in partners)

        # A replay: the same request twice is one replay, delivering the same event ids once more.
        since = (started - timedelta(minutes=1)).isoformat()
        first = await signed(api, a, "POST", "/api/v1/partner/feed/replay", {"since": since})
        again = await signed(api, a, "POST", "/api/v1/partner/feed/replay", {"since": since})
        assert first.status_code == again.status_code == 202, first.text
        replay = first.json()
        assert again.json()["replay_id"] == replay["replay_id"] and replay["events"] == len(a.consumer.received)
        path = f"/api/v1/partner/feed/replays/{replay['replay_id']}"

        async def replay_done() -> bool:
            return bool((await signed(api, a, "GET", path)).json()["status"] == "done")

        await eventually(replay_done, message="replay done")
        assert (await signed(api, b, "GET", path)).status_code == 404  # not b's
        original = [e["event_id"] for e in a.consumer.received]
        applied_before = len(a.book.applied)
        await read_until(partners, lambda: len(a.consumer.received) >= 2 * len(original))
        await asyncio.sleep(1.5)
        for p in partners:
            await p.consumer.poll(500)
        replayed = a.consumer.received[len(original) :]
        assert sorted(e["event_id"] for e in replayed) == sorted(original)  # the same ids, once
        for o in a.orders:  # still in order per order
            assert [e["status"] for e in replayed if e["order_id"] == o] == histories[o]
        assert len(a.book.applied) == applied_before and a.book.duplicates == len(original)  # applied once
        assert len(b.consumer.received) == len({e["event_id"] for e in b.consumer.received})  # b: nothing replayed

        # Too far back, or not a time: 422, nothing replayed.
        too_old = (datetime.now(UTC) - timedelta(days=31)).isoformat()
        assert (await signed(api, a, "POST", "/api/v1/partner/feed/replay", {"since": too_old})).status_code == 422
        assert (await signed(api, a, "POST", "/api/v1/partner/feed/replay", {"since": "soon"})).status_code in (
            400,
            422,
        )

        # The sample receiver refuses a forged delivery and applies nothing of it.
        forged = json.dumps({**a.hook_book.applied[0], "event_id": new_id(), "status": "refunded"}).encode()
        async with httpx.AsyncClient() as outsider:
            r = await outsider.post(a.receiver.url, content=forged, headers={"X-Kameng-Signature": "ab" * 32})
        assert r.status_code == 401 and a.receiver.rejected == 1
        assert len(a.hook_book.applied) == len(original)
    finally:
        for p in partners:
            await p.consumer.stop()
            p.receiver.stop()

    # The single shared topic that leaked every partner's orders is gone.
    admin = AIOKafkaAdminClient(bootstrap_servers=infra["KAFKA_BOOTSTRAP_SERVERS"])
    await admin.start()
    try:
        names = set(await admin.list_topics())
    finally:
        await admin.close()
    assert "partner.order-events.v1" not in names
    assert {a.feed["topic"], b.feed["topic"]} <= names


async def _ready(value: Any) -> Any:
    return value


def test_make_partner_demo_runs_against_the_platform(platform: Platform) -> None:
    """`make partner-demo` is `python -m examples.partner.demo`: the quickstart end to end."""
    run = subprocess.run(
        [sys.executable, "-m", "examples.partner.demo", platform.gateway_url],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "all known: True" in out and "forged call -> 401" in out, out[-3000:]
