"""Support's use cases against in-memory fakes of their deps: a store that keeps documents in
dicts (and honours the ticket table in its guarded updates), a unit of work that rolls the store
back when the function raises and keeps the events of the ones that commit, a mailer and a
webhook sender that record what they were asked to send."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import msgspec
import pytest
from bson import Binary
from pymongo.errors import DuplicateKeyError

from services.support import domain
from services.support.deps import SupportDeps
from services.support.settings import SupportSettings
from services.support.usecases import tickets, webhooks
from services.support.webhook_sender import Attempt
from shared.auth import Caller
from shared.contracts.envelope import new_id, utcnow
from shared.errors import Problem
from shared.idempotency import key_reused
from shared.messaging.outbox import Tx

T = TypeVar("T")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
BUYER = Caller(user_id="buyer-1")
STRANGER = Caller(user_id="buyer-2")
STAFF = Caller(user_id="staff-1", roles=("staff",))


class FakeStore:
    """The parts of SupportStore these use cases call, over plain dicts."""

    def __init__(self) -> None:
        self.tickets: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.keys: dict[tuple[str, str, str], tuple[str, str]] = {}
        self.files: dict[str, bytes] = {}
        self.notifications: list[dict[str, Any]] = []
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.deliveries: dict[str, dict[str, Any]] = {}

    # what a transaction may change (the fake unit of work restores it on abort)
    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy({k: v for k, v in vars(self).items() if k != "files"})

    def restore(self, state: dict[str, Any]) -> None:
        vars(self).update(state)

    async def order(self, order_id: str, *, tx: Tx | None = None) -> dict[str, Any] | None:
        return copy.deepcopy(self.orders.get(order_id))

    async def ticket(self, ticket_id: str, *, tx: Tx | None = None) -> dict[str, Any] | None:
        return copy.deepcopy(self.tickets.get(ticket_id))

    async def ticket_status(self, ticket_id: str) -> str | None:
        doc = self.tickets.get(ticket_id)
        return doc["status"] if doc else None

    async def create_ticket(self, doc: dict[str, Any], *, tx: Tx) -> None:
        self.tickets[doc["_id"]] = copy.deepcopy(doc)

    async def recall(self, scope: str, owner: str, key: str | None, fp: str) -> str | None:
        if key is None or (scope, owner, key) not in self.keys:
            return None
        seen_fp, ref = self.keys[(scope, owner, key)]
        if seen_fp != fp:
            raise key_reused()
        return ref

    async def remember(self, scope: str, owner: str, key: str | None, fp: str, ref: str, *, tx: Tx) -> None:
        if key is None:
            return
        if (scope, owner, key) in self.keys:
            raise DuplicateKeyError("idempotency record exists")
        self.keys[(scope, owner, key)] = (fp, ref)

    async def put_evidence(self, name: str, blob: bytes, *, metadata: dict[str, Any]) -> str:
        file_id = new_id()
        self.files[file_id] = blob
        return file_id

    async def discard_evidence(self, file_id: str) -> None:
        del self.files[file_id]

    async def add_notification(self, doc: dict[str, Any], *, tx: Tx) -> None:
        self.notifications.append(doc)

    async def add_message(
        self,
        ticket_id: str,
        message: dict[str, Any],
        *,
        status: domain.TicketStatus,
        fields: dict[str, Any],
        history: bool,
        now: datetime,
        tx: Tx,
    ) -> bool:
        doc = self.tickets[ticket_id]
        if doc["status"] not in domain.TICKET_FLOW.sources(status):
            return False
        doc["messages"].append(message)
        doc.update(fields, status=status.value, updated_at=now)
        return True

    async def resolve_ticket(self, ticket_id: str, resolution: dict[str, Any], *, now: datetime, tx: Tx) -> bool:
        doc = self.tickets[ticket_id]
        if doc["status"] not in domain.TICKET_FLOW.sources(domain.TicketStatus.RESOLVED):
            return False
        doc.update(status="resolved", resolution=resolution, due_at=None, updated_at=now)
        return True

    async def mark_refunded_by(self, order_id: str, ticket_id: str, *, tx: Tx) -> bool:
        order = self.orders[order_id]
        if order.get("refund_ticket_id") is not None:
            return False
        order["refund_ticket_id"] = ticket_id
        return True

    async def claim_due_deliveries(self, *, now: datetime, lease_until: datetime, limit: int) -> list[dict[str, Any]]:
        due = [d for d in self.deliveries.values() if d["status"] == "pending" and d["next_attempt_at"] <= now]
        for d in due[:limit]:
            d["next_attempt_at"] = lease_until
        return copy.deepcopy(due[:limit])

    async def webhooks_by_id(self, webhook_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {i: self.webhooks[i] for i in webhook_ids if i in self.webhooks}

    async def save_delivery_outcomes(self, outcomes: list[tuple[str, dict[str, Any], dict[str, Any] | None]]) -> None:
        for delivery_id, fields, attempt in outcomes:
            self.deliveries[delivery_id].update(fields)
            if attempt is not None:
                self.deliveries[delivery_id]["log"].append(attempt)


class FakeUnitOfWork:
    """One transaction: the store is put back and the events dropped if `fn` raises."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.events: list[Any] = []
        self.public: list[Any] = []
        self.failing: Exception | None = None

    async def run(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        before = self.store.snapshot()
        tx = Tx(db=None, session=None, producer="support")  # type: ignore[arg-type]
        try:
            result = await fn(tx)
            if self.failing is not None:
                raise self.failing
        except BaseException:
            self.store.restore(before)
            raise
        self.events.extend(envelope for envelope, _topic in tx.events)
        self.public.extend(tx.public)
        return result

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [msgspec.json.decode(bytes(e.data)) for e in self.events if e.type == kind]


class FakeSender:
    """A partner endpoint that answers with the given status codes, in turn."""

    def __init__(self, *answers: int | None) -> None:
        self.answers = list(answers)
        self.posts: list[tuple[str, bytes, dict[str, str]]] = []

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt:
        self.posts.append((url, body, headers))
        code = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return Attempt(status_code=code, error=None if code else "ConnectError: refused", duration_ms=3)


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []

    async def send(self, *, to: str, subject: str, body: str, notification_id: str) -> None:
        self.sent.append({"to": to, "subject": subject})


class FakeFeedTopics:
    """The Kafka admin: remembers which partner topics were asked for."""

    def __init__(self) -> None:
        self.created: list[str] = []

    async def ensure(self, topic: str) -> None:
        if topic not in self.created:
            self.created.append(topic)


def make_deps(
    sender: FakeSender | None = None, *, store: FakeStore | None = None, **settings: Any
) -> tuple[SupportDeps, FakeStore, FakeUnitOfWork]:
    store = store or FakeStore()
    uow = FakeUnitOfWork(store)
    deps = SupportDeps(
        settings=SupportSettings(**settings),
        store=store,  # type: ignore[arg-type]
        uow=uow,  # type: ignore[arg-type]
        mailer=FakeMailer(),  # type: ignore[arg-type]
        webhooks=sender or FakeSender(200),  # type: ignore[arg-type]
        feed_topics=FakeFeedTopics(),  # type: ignore[arg-type]
    )
    return deps, store, uow


def delivered_order(store: FakeStore, owner: str = BUYER.user_id, *, quantity: int = 2) -> str:
    order_id = new_id()
    store.orders[order_id] = {
        "_id": order_id,
        "user_id": owner,
        "status": "delivered",
        "sku_id": "sku-1",
        "quantity": quantity,
        "total_cents": 4200,
        "refund_ticket_id": None,
    }
    return order_id


def draft(order_id: str, description: str = "the key says used", files: int = 1) -> tickets.OpenTicket:
    return tickets.OpenTicket(
        order_id=order_id, kind="invalid_key", description=description, files=[("shot.png", PNG)] * files
    )


async def opened(deps: SupportDeps, order_id: str) -> str:
    return str((await tickets.open_ticket(deps, BUYER, draft(order_id), key=None))["ticket_id"])


# -- opening a ticket -------------------------------------------------------------------------------


async def test_a_ticket_on_someone_elses_order_is_not_found_and_stores_nothing() -> None:
    deps, store, uow = make_deps()
    order_id = delivered_order(store, owner=BUYER.user_id)
    for caller, order in ((STRANGER, order_id), (BUYER, "no-such-order")):
        with pytest.raises(Problem) as err:
            await tickets.open_ticket(deps, caller, draft(order), key="k-1")
        assert err.value.status_code == 404
    assert store.tickets == {} and store.files == {} and store.keys == {}
    assert uow.events == [] and store.notifications == []


async def test_the_same_key_and_body_open_one_ticket_and_another_body_is_refused() -> None:
    deps, store, uow = make_deps()
    order_id = delivered_order(store)
    first = await tickets.open_ticket(deps, BUYER, draft(order_id), key="k-1")
    again = await tickets.open_ticket(deps, BUYER, draft(order_id), key="k-1")
    assert first == again == {"ticket_id": first["ticket_id"], "status": "open"}
    assert list(store.tickets) == [first["ticket_id"]]
    assert len(store.files) == 1  # the repeat uploaded nothing
    assert [e["ticket_id"] for e in uow.of_type("support.ticket-opened")] == [first["ticket_id"]]

    with pytest.raises(Problem) as err:
        await tickets.open_ticket(deps, BUYER, draft(order_id, description="something else"), key="k-1")
    assert err.value.status_code == 422 and err.value.slug == "idempotency-key-reused"
    # The same key is another request for another buyer.
    other = delivered_order(store, owner=STRANGER.user_id)
    assert (await tickets.open_ticket(deps, STRANGER, draft(other), key="k-1"))["ticket_id"] != first["ticket_id"]


async def test_a_concurrent_twin_that_lost_answers_the_winners_ticket_and_drops_its_files() -> None:
    deps, store, uow = make_deps()
    order_id = delivered_order(store)
    winner = await tickets.open_ticket(deps, BUYER, draft(order_id), key="k-1")
    real_recall = store.recall
    calls = 0

    async def recall_missing_once(*args: Any) -> str | None:
        # The twin checked before the winner committed: it saw no record the first time.
        nonlocal calls
        calls += 1
        return None if calls == 1 else await real_recall(*args)

    store.recall = recall_missing_once  # type: ignore[method-assign]
    twin = await tickets.open_ticket(deps, BUYER, draft(order_id), key="k-1")
    assert twin["ticket_id"] == winner["ticket_id"]
    assert len(store.tickets) == 1 and len(store.files) == 1
    assert len(uow.of_type("support.ticket-opened")) == 1


async def test_a_ticket_that_does_not_commit_leaves_no_evidence() -> None:
    deps, store, uow = make_deps()
    order_id = delivered_order(store)
    uow.failing = RuntimeError("the database went away")
    with pytest.raises(RuntimeError):
        await tickets.open_ticket(deps, BUYER, draft(order_id, files=2), key=None)
    assert store.files == {} and store.tickets == {} and uow.events == []


async def test_bad_evidence_is_refused_before_anything_is_stored() -> None:
    deps, store, _ = make_deps()
    order_id = delivered_order(store)
    renamed_text = tickets.OpenTicket(order_id=order_id, kind="other", description="x", files=[("a.png", b"hello")])
    with pytest.raises(Problem) as err:
        await tickets.open_ticket(deps, BUYER, renamed_text, key=None)
    assert err.value.status_code == 422
    assert store.files == {} and store.tickets == {}


# -- resolving ----------------------------------------------------------------------------------------


async def test_resolve_refund_emits_the_refund_request_once() -> None:
    deps, store, uow = make_deps()
    order_id = delivered_order(store)
    ticket_id = await opened(deps, order_id)
    refund = domain.Resolution(action="refund", note="sorry")

    first = await tickets.resolve(deps, STAFF.user_id, ticket_id, refund)
    again = await tickets.resolve(deps, STAFF.user_id, ticket_id, refund)
    assert first["status"] == again["status"] == "resolved"
    assert again["resolution"] == first["resolution"]
    assert first["resolution"]["amount_cents"] == 4200

    assert uow.of_type("support.refund-approved") == [
        {"ticket_id": ticket_id, "order_id": order_id, "user_id": BUYER.user_id, "amount_cents": 4200}
    ]
    assert len(uow.of_type("support.ticket-resolved")) == 1
    assert [n["kind"] for n in store.notifications] == ["ticket.opened", "ticket.refund"]

    # One refund per order, through any of its tickets.
    second_ticket = await opened(deps, order_id)
    with pytest.raises(Problem) as err:
        await tickets.resolve(deps, STAFF.user_id, second_ticket, refund)
    assert err.value.status_code == 409 and err.value.slug == "already-refunded"
    assert len(uow.of_type("support.refund-approved")) == 1


async def test_a_resolved_ticket_is_final_by_the_table() -> None:
    deps, store, uow = make_deps()
    ticket_id = await opened(deps, delivered_order(store))
    await tickets.resolve(deps, STAFF.user_id, ticket_id, domain.Resolution(action="reject", note="used"))
    events_before = len(uow.events)

    with pytest.raises(Problem) as err:
        await tickets.resolve(deps, STAFF.user_id, ticket_id, domain.Resolution(action="refund", note=""))
    assert err.value.status_code == 409 and err.value.slug == "already-resolved"
    for caller in (BUYER, STAFF):
        with pytest.raises(Problem) as err:
            await tickets.add_message(deps, caller, ticket_id, "hello?")
        assert err.value.status_code == 409 and err.value.slug == "ticket-resolved"
    assert len(uow.events) == events_before
    assert store.tickets[ticket_id]["resolution"]["action"] == "reject"


async def test_a_resolve_racing_another_is_refused_by_the_guarded_update() -> None:
    deps, store, uow = make_deps()
    order_id = delivered_order(store)
    ticket_id = await opened(deps, order_id)
    # Another request resolved it after this one read it as open.
    store.tickets[ticket_id].update(status="resolved", resolution={"action": "reject"})
    stale = {**store.tickets[ticket_id], "status": "open", "resolution": None}

    async def stale_read(ticket_id: str, *, tx: Tx | None = None) -> dict[str, Any]:
        return copy.deepcopy(stale)

    store.ticket = stale_read  # type: ignore[method-assign]
    with pytest.raises(Problem) as err:
        await tickets.resolve(deps, STAFF.user_id, ticket_id, domain.Resolution(action="refund", note=""))
    assert err.value.status_code == 409 and err.value.slug == "already-resolved"
    assert uow.of_type("support.refund-approved") == [] and store.orders[order_id]["refund_ticket_id"] is None


async def test_messages_move_the_ticket_between_waiting_for_staff_and_for_the_buyer() -> None:
    deps, store, _ = make_deps(ticket_sla_minutes=30)
    ticket_id = await opened(deps, delivered_order(store))
    due = store.tickets[ticket_id]["due_at"]
    assert (await tickets.add_message(deps, STAFF, ticket_id, "which key?"))["author"] == "staff"
    assert store.tickets[ticket_id]["status"] == "answered" and store.tickets[ticket_id]["due_at"] is None
    assert (await tickets.add_message(deps, BUYER, ticket_id, "the first"))["author"] == "buyer"
    assert store.tickets[ticket_id]["status"] == "open" and store.tickets[ticket_id]["due_at"] > due
    with pytest.raises(Problem) as err:
        await tickets.add_message(deps, STRANGER, ticket_id, "me too")
    assert err.value.status_code == 404


# -- webhook deliveries ------------------------------------------------------------------------------


def queue_delivery(store: FakeStore, event_id: str = "evt-1") -> str:
    store.webhooks["wh-1"] = {"_id": "wh-1", "url": "https://p.example/hook", "secret": "s3cret", "events": []}
    delivery_id = f"wh-1:{event_id}"
    store.deliveries[delivery_id] = {
        "_id": delivery_id,
        "webhook_id": "wh-1",
        "event_id": event_id,
        "order_id": "o-1",
        "payload": Binary(b'{"event_id":"evt-1"}'),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": utcnow() - timedelta(seconds=1),
        "log": [],
    }
    return delivery_id


async def test_a_failing_delivery_is_retried_with_backoff_then_dead_lettered() -> None:
    sender = FakeSender(500, None, 503)
    deps, store, _ = make_deps(sender, webhook_max_attempts=3, webhook_backoff_initial_ms=60_000)
    delivery_id = queue_delivery(store)
    record = store.deliveries[delivery_id]

    assert await webhooks.dispatch_due(deps) == 1
    assert record["status"] == "pending" and record["attempts"] == 1
    assert record["next_attempt_at"] > utcnow() + timedelta(seconds=50)  # backed off
    assert await webhooks.dispatch_due(deps) == 0  # not due yet: nothing is sent

    for attempt in (2, 3):
        record["next_attempt_at"] = utcnow() - timedelta(seconds=1)
        assert await webhooks.dispatch_due(deps) == 1
        assert record["attempts"] == attempt
    assert record["status"] == "dead" and record["dead_at"] is not None
    assert [e["status_code"] for e in record["log"]] == [500, None, 503]
    assert record["log"][1]["error"].startswith("ConnectError")

    record["next_attempt_at"] = utcnow() - timedelta(seconds=1)
    assert await webhooks.dispatch_due(deps) == 0  # dead letters wait for a replay
    url, body, headers = sender.posts[0]
    assert len(sender.posts) == 3 and url == "https://p.example/hook" and body == b'{"event_id":"evt-1"}'
    assert headers[domain.SIGNATURE_HEADER] == domain.sign("s3cret", body)
    assert headers["X-Kameng-Event-Id"] == "evt-1"


async def test_a_delivery_answered_2xx_is_delivered_and_one_for_a_removed_webhook_is_cancelled() -> None:
    sender = FakeSender(204)
    deps, store, _ = make_deps(sender)
    delivery_id = queue_delivery(store)
    assert await webhooks.dispatch_due(deps) == 1
    assert store.deliveries[delivery_id]["status"] == "delivered"

    orphan_id = queue_delivery(store, "evt-2")
    del store.webhooks["wh-1"]  # removed after the delivery was queued
    assert await webhooks.dispatch_due(deps) == 1
    assert store.deliveries[orphan_id]["status"] == "cancelled" and len(sender.posts) == 1
