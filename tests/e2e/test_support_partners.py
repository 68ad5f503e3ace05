"""What support tells people: the buyer's notifications and emails (through the local SMTP
sink), the public partner feed on the partner's own `partner.{id}.order-events.v1`, and signed,
retried, replayable webhooks. Orders exist only as the events published here."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from deploy.platform import Platform
from shared.contracts import topics
from shared.contracts.envelope import new_id
from shared.contracts.identity import UserRegistered
from tests.e2e.support_kit import delivered_order, eventually, publish, status_changed, valid_signature
from tests.helpers import auth

STAFF = auth("staff-2", roles=("staff",))
PUBLIC_FIELDS = {
    "site",  # the sub-site (分站) slug an order was placed on, null on the main site
    "event_id",
    "type",
    "occurred_at",
    "order_id",
    "partner_user_id",
    "status",
    "sku_id",
    "quantity",
    "total_cents",
}


# -- notifications and email ------------------------------------------------------------------


async def test_delivery_notice_in_app_and_by_email(
    api: httpx.AsyncClient, kafka: AIOKafkaProducer, platform: Platform
) -> None:
    user_id = new_id()
    email = f"buyer-{user_id[:8]}@example.com"
    headers = auth(user_id)
    await publish(kafka, UserRegistered(user_id=user_id, email=email))
    order_id = await delivered_order(kafka, api, user_id, headers)

    async def mail() -> list[dict[str, Any]]:
        r = await asyncio.to_thread(httpx.get, platform.url("mailsink") + "/messages", params={"to": email})
        return [m for m in r.json() if "delivered" in m["subject"]]

    messages = await eventually(mail, message="delivery email in the sink")
    assert len(messages) == 1
    assert order_id[:12] in messages[0]["subject"] and order_id[:12] in messages[0]["body"]
    assert messages[0]["rcpt_tos"] == [email]

    r = await api.get("/api/v1/notifications", headers=headers)
    items = r.json()["items"]
    delivered = [n for n in items if n["kind"] == "order.delivered"]
    assert len(delivered) == 1 and not delivered[0]["read"] and r.json()["unread"] >= 1
    # Only delivered/refunded and ticket changes are told, not every internal step.
    assert {n["kind"] for n in items} == {"order.delivered"}

    # someone else cannot mark it; the owner can, once
    nid = delivered[0]["notification_id"]
    assert (await api.post(f"/api/v1/notifications/{nid}/read", headers=auth())).status_code == 404
    r = await api.post(f"/api/v1/notifications/{nid}/read", headers=headers)
    assert r.status_code == 200 and r.json()["read"] is True
    assert (await api.get("/api/v1/notifications", headers=headers, params={"unread": True})).json()["items"] == []
    assert (await api.get("/api/v1/notifications")).status_code == 401

    # The same event again (a redelivery) tells nobody twice.
    refund_event = status_changed(order_id, user_id, "refunded", "refunding")
    event_id = new_id()
    for _ in range(2):
        await publish(kafka, refund_event, event_id=event_id)

    async def refunded_mail() -> list[dict[str, Any]]:
        r = await asyncio.to_thread(httpx.get, platform.url("mailsink") + "/messages", params={"to": email})
        return [m for m in r.json() if "refunded" in m["subject"]]

    await eventually(refunded_mail, message="refund email")
    await asyncio.sleep(1.5)
    assert len(await refunded_mail()) == 1
    kinds = [n["kind"] for n in (await api.get("/api/v1/notifications", headers=headers)).json()["items"]]
    assert sorted(kinds) == ["order.delivered", "order.refunded"]


# -- the partner feed ---------------------------------------------------------------------------


async def test_partner_feed_has_its_orders_in_order_and_nothing_of_other_customers(
    kafka: AIOKafkaProducer, infra: dict[str, str]
) -> None:
    partner, other_buyer = new_id(), new_id()
    order, private_order = new_id(), new_id()
    steps = [
        (None, "pending_payment"),
        ("pending_payment", "paid"),
        ("paid", "delivering"),
        ("delivering", "delivered"),
    ]
    repeated_id = new_id()
    for i, (previous, status) in enumerate(steps):
        await publish(kafka, status_changed(private_order, other_buyer, status, previous))
        ev = status_changed(order, partner, status, previous, partner_key_id="key-1", total_cents=999, quantity=1)
        await publish(kafka, ev, event_id=repeated_id if i == 1 else None)
        if i == 1:
            await publish(kafka, ev, event_id=repeated_id)  # a redelivery: still one public event

    consumer = AIOKafkaConsumer(
        topics.partner_topic(partner),  # opened by the partner's first event if no key event came first
        bootstrap_servers=infra["KAFKA_BOOTSTRAP_SERVERS"],
        group_id=topics.partner_group_prefix(partner) + "test",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=1000,  # the topic may appear a moment after the consumer starts
    )
    await consumer.start()
    seen: list[tuple[bytes, dict[str, Any]]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 40
        while asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                seen += [(r.key, json.loads(r.value)) for r in records]
            if sum(1 for _, v in seen if v["order_id"] == order) >= len(steps):
                await asyncio.sleep(1.0)  # and nothing more arrives
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    seen += [(r.key, json.loads(r.value)) for r in records]
                break
    finally:
        await consumer.stop()

    ours = [v for k, v in seen if v["order_id"] == order]
    assert [v["status"] for v in ours] == [s for _, s in steps]  # in order, each once
    assert all(k == order.encode() for k, v in seen if v["order_id"] == order)  # key = order id
    assert len({v["event_id"] for v in ours}) == len(steps)
    assert all(set(v) == PUBLIC_FIELDS for v in ours)  # the flat public schema, no envelope
    assert ours[-1] | {"event_id": "-", "occurred_at": "-"} == {
        "event_id": "-",
        "occurred_at": "-",
        "type": "order.status-changed",
        "order_id": order,
        "partner_user_id": partner,
        "status": "delivered",
        "sku_id": "sku-1",
        "quantity": 1,
        "total_cents": 999,
        "site": None,  # placed on the main site, not a sub-site
    }
    # An ordinary customer's order never reaches the partner topic.
    assert not [v for _, v in seen if v["order_id"] == private_order or v["partner_user_id"] == other_buyer]


# -- webhooks -------------------------------------------------------------------------------------


class Receiver:
    """A partner's HTTP endpoint: answers 500 to the first `failures` requests, then 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = 500 if len(receiver.requests) < receiver.failures else 200
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/kameng-hook"

    def successes(self) -> list[tuple[dict[str, str], bytes, int]]:
        return [r for r in self.requests if r[2] == 200]

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver_factory() -> Iterator[Any]:
    made: list[Receiver] = []

    def make(failures: int) -> Receiver:
        made.append(Receiver(failures))
        return made[-1]

    yield make
    for r in made:
        r.close()


async def test_webhook_retries_with_backoff_and_delivers_once_signed(
    api: httpx.AsyncClient, kafka: AIOKafkaProducer, receiver_factory: Any
) -> None:
    partner = new_id()
    headers = auth(partner)
    receiver = receiver_factory(failures=3)
    r = await api.post(
        "/api/v1/partner/webhooks", json={"url": receiver.url, "events": ["order.status-changed"]}, headers=headers
    )
    assert r.status_code == 201, r.text
    hook = r.json()
    assert len(hook["secret"]) == 64 and hook["webhook_id"]
    listed = (await api.get("/api/v1/partner/webhooks", headers=headers)).json()["items"]
    assert [h["webhook_id"] for h in listed] == [hook["webhook_id"]] and "secret" not in listed[0]

    order = new_id()
    await publish(kafka, status_changed(order, partner, "delivered", "delivering", partner_key_id="k", total_cents=500))

    await eventually(lambda: _ready(receiver.successes()), timeout=40, message="webhook delivered")
    await asyncio.sleep(2.0)  # no further attempt after the success
    assert [status for _, _, status in receiver.requests] == [500, 500, 500, 200]
    bodies = {body for _, body, _ in receiver.requests}
    assert len(bodies) == 1  # the same payload every time
    body = bodies.pop()
    for request_headers, _, _ in receiver.requests:
        assert valid_signature(hook["secret"], body, request_headers["x-kameng-signature"])
    payload = json.loads(body)
    assert set(payload) == PUBLIC_FIELDS and payload["order_id"] == order and payload["partner_user_id"] == partner
    assert receiver.requests[0][0]["x-kameng-event-id"] == payload["event_id"]

    log = (await api.get(f"/api/v1/partner/webhooks/{hook['webhook_id']}/deliveries", headers=headers)).json()
    assert log["total"] == 1
    delivery = log["items"][0]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 4
    assert [entry["status_code"] for entry in delivery["log"]] == [500, 500, 500, 200]
    assert delivery["payload"] == payload
    # Backoff 0.2 s, 0.4 s, 0.8 s (WEBHOOK_BACKOFF_INITIAL_MS=200 in the tests): the waits double.
    gaps = [_seconds(b["at"]) - _seconds(a["at"]) for a, b in zip(delivery["log"], delivery["log"][1:], strict=False)]
    assert gaps[0] >= 0.19 and gaps[1] >= 0.39 and gaps[2] >= 0.79 and gaps[0] < gaps[1] < gaps[2], gaps

    # another partner sees nothing of it
    stranger = auth()
    assert (
        await api.get(f"/api/v1/partner/webhooks/{hook['webhook_id']}/deliveries", headers=stranger)
    ).status_code == 404
    assert (await api.delete(f"/api/v1/partner/webhooks/{hook['webhook_id']}", headers=stranger)).status_code == 404


async def test_webhook_dead_letter_and_replay(
    api: httpx.AsyncClient, kafka: AIOKafkaProducer, receiver_factory: Any
) -> None:
    partner = new_id()
    headers = auth(partner)
    receiver = receiver_factory(failures=1000)  # down for now
    hook = (
        await api.post(
            "/api/v1/partner/webhooks", json={"url": receiver.url, "events": ["order.delivered"]}, headers=headers
        )
    ).json()
    order = new_id()
    await publish(
        kafka, status_changed(order, partner, "paid", "pending_payment", partner_key_id="k")
    )  # not subscribed
    await publish(kafka, status_changed(order, partner, "delivered", "delivering", partner_key_id="k"))
    deliveries = f"/api/v1/partner/webhooks/{hook['webhook_id']}/deliveries"

    async def dead() -> list[dict[str, Any]]:
        return (await api.get(deliveries, params={"status": "dead"}, headers=headers)).json()["items"]

    dead_items = await eventually(dead, timeout=40, message="dead-lettered after WEBHOOK_MAX_ATTEMPTS")
    assert len(dead_items) == 1 and dead_items[0]["attempts"] == 4 and dead_items[0]["payload"]["status"] == "delivered"
    assert len(receiver.requests) == 4  # max attempts, then it stops
    assert (await api.get(deliveries, headers=headers)).json()["total"] == 1  # `paid` was not subscribed
    staff_view = (await api.get("/api/v1/admin/webhook-deliveries", params={"page_size": 100}, headers=STAFF)).json()
    assert dead_items[0]["delivery_id"] in {d["delivery_id"] for d in staff_view["items"]}
    assert (await api.get("/api/v1/admin/webhook-deliveries", headers=headers)).status_code == 403

    # The partner fixes the endpoint and replays: delivered once more, signed.
    receiver.failures = 0
    delivery_id = dead_items[0]["delivery_id"]
    r = await api.post(f"{deliveries}/{delivery_id}/replay", headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "pending"
    await eventually(lambda: _ready(receiver.successes()), timeout=20, message="replayed delivery")
    await asyncio.sleep(1.0)
    assert len(receiver.successes()) == 1
    assert valid_signature(hook["secret"], receiver.successes()[0][1], receiver.successes()[0][0]["x-kameng-signature"])
    # staff may replay too (e.g. after the partner asks); a pending one is not replayed twice
    r = await api.post(f"/api/v1/admin/webhook-deliveries/{delivery_id}/replay", headers=STAFF)
    assert r.status_code == 200
    await eventually(lambda: _ready(len(receiver.successes()) == 2), timeout=20, message="staff replay")

    # bad registrations change nothing; deleting stops deliveries
    for bad in (
        {"url": "ftp://x", "events": ["order.status-changed"]},
        {"url": receiver.url, "events": ["order.exploded"]},
        {"url": receiver.url, "events": []},
    ):
        r = await api.post("/api/v1/partner/webhooks", json=bad, headers=headers)
        assert r.status_code == 422, (bad, r.text)
    assert len((await api.get("/api/v1/partner/webhooks", headers=headers)).json()["items"]) == 1
    assert (await api.delete(f"/api/v1/partner/webhooks/{hook['webhook_id']}", headers=headers)).status_code == 204
    assert (await api.get("/api/v1/partner/webhooks", headers=headers)).json()["items"] == []


async def _ready(value: Any) -> Any:
    return value


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()
