"""After-sales tickets through the gateway, with orders known to support only from the
`order.status-changed` events published here: ownership, evidence limits, the message thread,
the SLA flag, urges first in the staff queue, and resolutions that emit one event each."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import msgspec
from aiokafka import AIOKafkaProducer

from deploy.platform import Platform
from shared.contracts import topics
from shared.contracts.envelope import Envelope, new_id, utcnow
from shared.contracts.order import OrderUrged
from tests.e2e.support_kit import PNG, delivered_order, eventually, publish, status_changed
from tests.helpers import auth
from tests.integration.kit import read_topic

STAFF = auth("staff-1", roles=("staff",))


def buyer() -> tuple[str, dict[str, str]]:
    user_id = new_id()
    return user_id, auth(user_id)


async def open_ticket(api: httpx.AsyncClient, headers: dict[str, str], order_id: str, **extra: Any) -> httpx.Response:
    body = {"order_id": order_id, "kind": "invalid_key", "description": "卡密无效 the key says already used", **extra}
    return await api.post("/api/v1/tickets", json=body, headers=headers)


async def support_events(infra: dict[str, str], ticket_id: str) -> list[Envelope]:
    records = await read_topic(infra["KAFKA_BOOTSTRAP_SERVERS"], topics.SUPPORT)
    envelopes = [msgspec.json.decode(r.value, type=Envelope) for r in records]
    return [e for e in envelopes if json.loads(bytes(e.data)).get("ticket_id") == ticket_id]


async def test_a_ticket_only_on_your_own_known_order(api: httpx.AsyncClient, kafka: AIOKafkaProducer) -> None:
    owner, owner_auth = buyer()
    _, other_auth = buyer()
    order_id = await delivered_order(kafka, api, owner, owner_auth)

    for headers, oid in ((other_auth, order_id), (owner_auth, new_id())):
        r = await open_ticket(api, headers, oid)
        assert r.status_code == 404, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    assert (await api.get("/api/v1/tickets", headers=other_auth)).json()["total"] == 0
    assert (await open_ticket(api, {}, order_id)).status_code == 401

    r = await open_ticket(api, owner_auth, order_id)
    assert r.status_code == 201, r.text
    ticket = r.json()
    assert ticket["status"] == "open"
    assert (await api.get(f"/api/v1/tickets/{ticket['ticket_id']}", headers=other_auth)).status_code == 404
    mine = (await api.get("/api/v1/tickets", headers=owner_auth)).json()
    assert [t["ticket_id"] for t in mine["items"]] == [ticket["ticket_id"]]

    # bad input: nothing stored
    for bad in ({"kind": "angry"}, {"description": ""}, {"description": "x" * 5001}):
        r = await open_ticket(api, owner_auth, order_id, **bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["errors"]
    assert (await api.get("/api/v1/tickets", headers=owner_auth)).json()["total"] == 1


async def test_evidence_files_are_limited_in_size_and_type(api: httpx.AsyncClient, kafka: AIOKafkaProducer) -> None:
    owner, owner_auth = buyer()
    order_id = await delivered_order(kafka, api, owner, owner_auth)
    fields = {"order_id": order_id, "kind": "invalid_key", "description": "screenshot attached"}

    too_big = PNG + b"\x00" * (2 * 1024 * 1024)
    for name, blob, ctype in (
        ("big.png", too_big, "image/png"),
        ("fake.png", b"just text pretending to be a picture", "image/png"),  # type from the bytes, not the claim
        ("run.exe", b"MZ\x90\x00" + b"\x00" * 100, "application/octet-stream"),
    ):
        r = await api.post("/api/v1/tickets", data=fields, files={"evidence": (name, blob, ctype)}, headers=owner_auth)
        assert r.status_code == 422, (name, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"][0]["field"] == "evidence[0]"
    assert (await api.get("/api/v1/tickets", headers=owner_auth)).json()["total"] == 0

    r = await api.post(
        "/api/v1/tickets",
        data=fields,
        files=[
            ("evidence", ("shot.png", PNG, "image/png")),
            ("evidence", ("receipt.pdf", b"%PDF-1.4 ...", "application/pdf")),
        ],
        headers=owner_auth,
    )
    assert r.status_code == 201, r.text
    ticket_id = r.json()["ticket_id"]
    detail = (await api.get(f"/api/v1/tickets/{ticket_id}", headers=owner_auth)).json()
    assert [(e["name"], e["content_type"], e["size"]) for e in detail["evidence"]] == [
        ("shot.png", "image/png", len(PNG)),
        ("receipt.pdf", "application/pdf", 12),
    ]
    file_id = detail["evidence"][0]["file_id"]
    download = await api.get(f"/api/v1/tickets/{ticket_id}/evidence/{file_id}", headers=owner_auth)
    assert download.status_code == 200 and download.content == PNG
    assert (await api.get(f"/api/v1/tickets/{ticket_id}/evidence/{file_id}", headers=auth())).status_code == 404
    assert (await api.get(f"/api/v1/tickets/{ticket_id}/evidence/{file_id}", headers=STAFF)).content == PNG


async def test_thread_statuses_and_the_sla_flag(api: httpx.AsyncClient, kafka: AIOKafkaProducer) -> None:
    owner, owner_auth = buyer()
    order_id = await delivered_order(kafka, api, owner, owner_auth)
    ticket_id = (await open_ticket(api, owner_auth, order_id)).json()["ticket_id"]
    t = (await api.get(f"/api/v1/tickets/{ticket_id}", headers=owner_auth)).json()
    assert t["overdue"] is False and t["due_at"]

    # Nobody answers within the SLA (3 s here): the ticket is flagged, for the buyer and staff.
    async def flagged() -> bool:
        r = await api.get(f"/api/v1/tickets/{ticket_id}", headers=owner_auth)
        return bool(r.json()["overdue"])

    await eventually(flagged, timeout=15, message="SLA flag")
    queue = (await api.get("/api/v1/admin/tickets", params={"page_size": 100}, headers=STAFF)).json()["items"]
    assert next(q for q in queue if q["ticket_id"] == ticket_id)["overdue"] is True

    r = await api.post(f"/api/v1/tickets/{ticket_id}/messages", json={"body": "any news?"}, headers=owner_auth)
    assert r.status_code == 201 and r.json()["author"] == "buyer"
    assert (
        await api.post(f"/api/v1/tickets/{ticket_id}/messages", json={"body": "hi"}, headers=auth())
    ).status_code == 404
    assert (
        await api.post(f"/api/v1/tickets/{ticket_id}/messages", json={"body": ""}, headers=owner_auth)
    ).status_code == 422
    r = await api.post(f"/api/v1/tickets/{ticket_id}/messages", json={"body": "checking the key now"}, headers=STAFF)
    assert r.status_code == 201 and r.json()["author"] == "staff"
    t = (await api.get(f"/api/v1/tickets/{ticket_id}", headers=owner_auth)).json()
    assert t["status"] == "answered" and t["overdue"] is False and t["due_at"] is None
    assert [m["author"] for m in t["messages"]] == ["buyer", "staff"]
    assert [h["status"] for h in t["history"]] == ["open", "answered"]
    notes = (await api.get("/api/v1/notifications", headers=owner_auth)).json()["items"]
    assert {"ticket.opened", "ticket.answered"} <= {n["kind"] for n in notes}

    # staff only
    assert (await api.get("/api/v1/admin/tickets", headers=owner_auth)).status_code == 403


async def test_urged_orders_come_first_in_the_staff_queue(api: httpx.AsyncClient, kafka: AIOKafkaProducer) -> None:
    owner, owner_auth = buyer()
    calm = await delivered_order(kafka, api, owner, owner_auth)
    urged = await delivered_order(kafka, api, owner, owner_auth)
    calm_ticket = (await open_ticket(api, owner_auth, calm)).json()["ticket_id"]
    await asyncio.sleep(0.05)
    urged_ticket = (await open_ticket(api, owner_auth, urged)).json()["ticket_id"]
    for _ in range(2):
        await publish(kafka, OrderUrged(order_id=urged, user_id=owner, status="delivering", urged_at=utcnow()))

    async def urge_listed() -> dict[str, Any] | None:
        r = await api.get("/api/v1/admin/urges", headers=STAFF)
        return next((u for u in r.json()["items"] if u["order_id"] == urged and u["count"] == 2), None)

    urge = await eventually(urge_listed, message="urge recorded")
    assert urge["ticket_ids"] == [urged_ticket] and urge["user_id"] == owner
    queue = (await api.get("/api/v1/admin/tickets", params={"page_size": 100}, headers=STAFF)).json()["items"]
    ids = [q["ticket_id"] for q in queue]
    assert ids.index(urged_ticket) < ids.index(calm_ticket)
    urged_flags = [q["urged"] for q in queue]
    assert urged_flags == sorted(urged_flags, reverse=True)  # every urged ticket above every other

    # An urge ends when the order settles (or staff handle it).
    await publish(kafka, status_changed(urged, owner, "refunded", "refunding"))

    async def urge_closed() -> bool:
        r = await api.get("/api/v1/admin/urges", headers=STAFF)
        return all(u["order_id"] != urged for u in r.json()["items"])

    await eventually(urge_closed, message="urge closed")
    assert (await api.post(f"/api/v1/admin/urges/{new_id()}/handle", headers=STAFF)).status_code == 404


async def test_refund_resolution_emits_one_event_however_often_it_is_requested(
    api: httpx.AsyncClient, kafka: AIOKafkaProducer, infra: dict[str, str]
) -> None:
    owner, owner_auth = buyer()
    order_id = await delivered_order(kafka, api, owner, owner_auth, total_cents=4321)
    ticket_id = (await open_ticket(api, owner_auth, order_id)).json()["ticket_id"]
    resolve = {"action": "refund", "note": "key confirmed invalid"}
    url = f"/api/v1/admin/tickets/{ticket_id}/resolve"
    assert (await api.post(url, json=resolve, headers=owner_auth)).status_code == 403

    # Concurrent and repeated requests: every one answers the same resolution.
    answers = await asyncio.gather(*(api.post(url, json=resolve, headers=STAFF) for _ in range(4)))
    answers.append(await api.post(url, json=resolve, headers=STAFF))
    assert {r.status_code for r in answers} == {200}, [r.text for r in answers]
    assert {r.json()["resolution"]["amount_cents"] for r in answers} == {4321}
    other = await api.post(url, json={"action": "reissue", "note": ""}, headers=STAFF)
    assert other.status_code == 409 and other.json()["type"].endswith("/already-resolved")

    # A second ticket on the same order cannot approve a second refund.
    second = (await open_ticket(api, owner_auth, order_id)).json()["ticket_id"]
    r = await api.post(f"/api/v1/admin/tickets/{second}/resolve", json=resolve, headers=STAFF)
    assert r.status_code == 409 and r.json()["type"].endswith("/already-refunded")

    async def refund_events() -> list[Envelope]:
        return [e for e in await support_events(infra, ticket_id) if e.type == "support.refund-approved"]

    events = await eventually(refund_events, message="support.refund-approved on the topic")
    await asyncio.sleep(1.5)  # a second copy would have been relayed by now
    events = await refund_events()
    assert len(events) == 1
    assert json.loads(bytes(events[0].data)) == {
        "ticket_id": ticket_id,
        "order_id": order_id,
        "user_id": owner,
        "amount_cents": 4321,
    }
    assert events[0].key == order_id
    ticket = (await api.get(f"/api/v1/tickets/{ticket_id}", headers=owner_auth)).json()
    assert ticket["status"] == "resolved" and ticket["resolution"]["action"] == "refund"
    r = await api.post(f"/api/v1/tickets/{ticket_id}/messages", json={"body": "thanks"}, headers=owner_auth)
    assert r.status_code == 409


async def test_reissue_and_reject(api: httpx.AsyncClient, kafka: AIOKafkaProducer, infra: dict[str, str]) -> None:
    owner, owner_auth = buyer()
    order_id = await delivered_order(kafka, api, owner, owner_auth, quantity=3, sku_id="sku-r")
    reissue_ticket = (await open_ticket(api, owner_auth, order_id)).json()["ticket_id"]
    reject_ticket = (await open_ticket(api, owner_auth, order_id, kind="other")).json()["ticket_id"]

    r = await api.post(
        f"/api/v1/admin/tickets/{reissue_ticket}/resolve", json={"action": "reissue", "quantity": 4}, headers=STAFF
    )
    assert r.status_code == 422  # more than the order had
    for _ in range(2):
        r = await api.post(
            f"/api/v1/admin/tickets/{reissue_ticket}/resolve", json={"action": "reissue", "quantity": 1}, headers=STAFF
        )
        assert r.status_code == 200 and r.json()["resolution"]["quantity"] == 1
    r = await api.post(
        f"/api/v1/admin/tickets/{reject_ticket}/resolve",
        json={"action": "reject", "note": "key was used by you"},
        headers=STAFF,
    )
    assert r.status_code == 200 and r.json()["resolution"]["note"] == "key was used by you"
    bad = await api.post(f"/api/v1/admin/tickets/{reject_ticket}/resolve", json={"action": "shrug"}, headers=STAFF)
    assert bad.status_code == 422
    assert (
        await api.post(f"/api/v1/admin/tickets/{new_id()}/resolve", json={"action": "reject"}, headers=STAFF)
    ).status_code == 404

    async def reissues() -> list[Envelope]:
        return [e for e in await support_events(infra, reissue_ticket) if e.type == "support.reissue-requested"]

    await eventually(reissues, message="support.reissue-requested")
    await asyncio.sleep(1.5)
    events = await reissues()
    assert len(events) == 1
    assert json.loads(bytes(events[0].data)) == {
        "ticket_id": reissue_ticket,
        "order_id": order_id,
        "user_id": owner,
        "sku_id": "sku-r",
        "quantity": 1,
    }
    rejected = await support_events(infra, reject_ticket)
    assert {e.type for e in rejected} == {"support.ticket-opened", "support.ticket-resolved"}
    notes = {n["kind"] for n in (await api.get("/api/v1/notifications", headers=owner_auth)).json()["items"]}
    assert {"ticket.reissue", "ticket.reject"} <= notes


async def test_no_reissue_or_refund_before_delivery(
    api: httpx.AsyncClient, kafka: AIOKafkaProducer, platform: Platform
) -> None:
    owner, owner_auth = buyer()
    order_id = new_id()
    await publish(kafka, status_changed(order_id, owner, "paid"))

    async def ticket_opens() -> httpx.Response | None:
        r = await open_ticket(api, owner_auth, order_id, kind="not_received")
        return r if r.status_code == 201 else None

    ticket_id = (await eventually(ticket_opens, message="order known")).json()["ticket_id"]
    r = await api.post(f"/api/v1/admin/tickets/{ticket_id}/resolve", json={"action": "refund"}, headers=STAFF)
    assert r.status_code == 409 and r.json()["type"].endswith("/order-not-eligible")
    assert (await api.get(f"/api/v1/tickets/{ticket_id}", headers=owner_auth)).json()["status"] == "open"


async def test_idempotency_key_opens_one_ticket(api: httpx.AsyncClient, kafka: AIOKafkaProducer) -> None:
    owner, owner_auth = buyer()
    order_id = await delivered_order(kafka, api, owner, owner_auth)
    keyed = {**owner_auth, "Idempotency-Key": "ticket-" + new_id()}
    answers = await asyncio.gather(*(open_ticket(api, keyed, order_id) for _ in range(3)))
    # A duplicate sent while the first is still being handled is told to retry (the gateway's
    # 409 idempotency-in-progress); one that comes after gets the first answer again.
    assert {r.status_code for r in answers} <= {201, 409}, [r.text for r in answers]
    assert all(r.headers.get("retry-after") for r in answers if r.status_code == 409)
    answers = [r for r in answers if r.status_code == 201]
    answers.append(await open_ticket(api, keyed, order_id))
    assert answers[-1].status_code == 201
    assert len({r.json()["ticket_id"] for r in answers}) == 1
    r = await open_ticket(api, keyed, order_id, description="something else")
    assert r.status_code == 422 and r.json()["type"].endswith("idempotency-key-reused")
    assert (await api.get("/api/v1/tickets", headers=owner_auth)).json()["total"] == 1
