from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from services.support import domain
from services.support.domain import Resolution, RuleViolation
from shared.contracts.order import OrderStatusChanged
from shared.contracts.support import PartnerOrderEvent
from shared.messaging.outbox import public_record

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 10
ALLOWED = frozenset({"image/png", "image/jpeg", "application/pdf"})


def status_changed(status: str = "delivered", partner_key_id: str | None = "k1") -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id="o1",
        user_id="u1",
        status=status,
        previous_status="delivering",
        sku_id="s1",
        quantity=2,
        total_cents=1234,
        at=NOW,
        partner_key_id=partner_key_id,
    )


# -- tickets ----------------------------------------------------------------------------------


def test_only_the_owner_of_a_known_order_may_open_a_ticket() -> None:
    order = {"user_id": "u1", "status": "delivered"}
    assert domain.check_ticketable(order, "u1") is order
    for o, user in ((order, "u2"), (None, "u1")):
        with pytest.raises(RuleViolation) as err:
            domain.check_ticketable(o, user)
        assert err.value.status == 404  # the same answer for someone else's and for unknown orders
    with pytest.raises(RuleViolation) as err:
        domain.check_ticketable({"user_id": "u1", "status": "pending_payment"}, "u1")
    assert err.value.status == 409


def test_resolution_is_applied_once_then_repeated_or_refused() -> None:
    ticket = {"status": "open"}
    order = {"status": "delivered", "quantity": 2}
    assert domain.check_resolution(ticket, order, Resolution("refund", "")) == "apply"
    done = {"status": "resolved", "resolution": {"action": "refund"}}
    assert domain.check_resolution(done, order, Resolution("refund", "again")) == "same"
    with pytest.raises(RuleViolation, match="already resolved"):
        domain.check_resolution(done, order, Resolution("reissue", ""))


def test_compensation_needs_a_delivered_order_and_one_refund_per_order() -> None:
    ticket = {"status": "open"}
    with pytest.raises(RuleViolation) as err:
        domain.check_resolution(ticket, {"status": "paid", "quantity": 1}, Resolution("reissue", ""))
    assert err.value.slug == "order-not-eligible"
    assert domain.check_resolution(ticket, {"status": "paid", "quantity": 1}, Resolution("reject", "")) == "apply"
    assert domain.check_resolution(ticket, None, Resolution("reject", "")) == "apply"
    with pytest.raises(RuleViolation) as err:
        domain.check_resolution(
            ticket, {"status": "delivered", "quantity": 1, "refund_ticket_id": "t0"}, Resolution("refund", "")
        )
    assert err.value.slug == "already-refunded"
    with pytest.raises(RuleViolation) as err:
        domain.check_resolution(ticket, {"status": "delivered", "quantity": 2}, Resolution("reissue", "", quantity=3))
    assert err.value.status == 422 and err.value.field == "quantity"


def test_sla_flag() -> None:
    due = domain.due_at(NOW, 30)
    assert due == NOW + timedelta(minutes=30)
    ticket = {"status": "open", "due_at": due}
    assert not domain.is_overdue(ticket, NOW + timedelta(minutes=29))
    assert domain.is_overdue(ticket, NOW + timedelta(minutes=30))
    assert not domain.is_overdue({"status": "answered", "due_at": None}, NOW + timedelta(days=9))
    assert not domain.is_overdue({"status": "resolved", "due_at": due}, NOW + timedelta(days=9))


# -- evidence ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (PNG, "image/png"),
        (b"\xff\xd8\xff\xe0rest", "image/jpeg"),
        (b"GIF89a...", "image/gif"),
        (b"%PDF-1.7", "application/pdf"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"MZ\x90\x00", None),
        (b"<svg onload=alert(1)>", None),
        (b"", None),
    ],
)
def test_types_come_from_the_bytes(data: bytes, kind: str | None) -> None:
    assert domain.sniff_type(data) == kind


def test_evidence_limits() -> None:
    ok = domain.check_evidence([("a.png", PNG)], max_bytes=100, max_files=2, allowed=ALLOWED)
    assert ok == []
    errors = domain.check_evidence(
        [("big.png", PNG + b"\x00" * 100), ("x.png", b"text"), ("e.png", b"")],
        max_bytes=100,
        max_files=2,
        allowed=ALLOWED,
    )
    assert [e["field"] for e in errors] == ["evidence", "evidence[0]", "evidence[1]", "evidence[2]"]
    assert "larger than 100 bytes" in errors[1]["message"]


# -- notices -----------------------------------------------------------------------------------


def test_order_notices_only_for_delivered_and_refunded() -> None:
    subject, body = domain.order_notice(status_changed("refunded")) or ("", "")
    assert "refunded" in subject and "¥12.34" in body
    assert domain.order_notice(status_changed("delivered")) is not None
    for status in ("paid", "delivering", "refunding", "cancelled"):
        assert domain.order_notice(status_changed(status)) is None


# -- partner feed and webhooks -----------------------------------------------------------------------


def test_partner_event_is_flat_and_only_for_partner_orders() -> None:
    assert domain.partner_event(status_changed(partner_key_id=None), event_id="e1") is None
    event = domain.partner_event(status_changed(), event_id="e1")
    assert event is not None
    assert msgspec.json.decode(domain.encode_public(event)) == {
        "event_id": "e1",
        "type": "order.status-changed",
        "occurred_at": "2026-11-22T12:00:00Z",
        "order_id": "o1",
        "partner_user_id": "u1",
        "status": "delivered",
        "sku_id": "s1",
        "quantity": 2,
        "total_cents": 1234,
        "site": None,
    }
    assert set(PartnerOrderEvent.__struct_fields__) == {
        "event_id",
        "type",
        "occurred_at",
        "order_id",
        "partner_user_id",
        "status",
        "sku_id",
        "quantity",
        "total_cents",
        "site",
    }


def test_webhook_subscriptions_and_registration_checks() -> None:
    assert domain.webhook_wants(["order.status-changed"], "paid")
    assert domain.webhook_wants(["order.delivered"], "delivered")
    assert not domain.webhook_wants(["order.delivered"], "paid")
    assert domain.check_webhook("https://p.example/hook", ["order.delivered"], require_https=True) == []
    assert domain.check_webhook("http://p.example/hook", ["order.delivered"], require_https=False) == []
    assert [e["field"] for e in domain.check_webhook("http://p.example/h", ["x"], require_https=True)] == [
        "url",
        "events[0]",
    ]
    assert domain.check_webhook("https://p.example/h", [], require_https=True)[0]["field"] == "events"
    assert domain.check_webhook("javascript:alert(1)", ["order.paid"], require_https=False)[0]["field"] == "url"
    # production (https required) also refuses our own network
    for internal in (
        "https://127.0.0.1/h",
        "https://10.1.2.3/h",
        "https://[::1]/h",
        "https://localhost/h",
        "https://169.254.169.254/",
    ):
        assert (
            domain.check_webhook(internal, ["order.paid"], require_https=True)[0]["message"]
            == "must point to a public host"
        )
    assert domain.check_webhook("http://127.0.0.1:9/h", ["order.paid"], require_https=False) == []  # dev and tests


def test_signature_is_hex_hmac_sha256_of_the_body() -> None:
    body = b'{"a":1}'
    assert domain.sign("s3cret", body) == hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert domain.sign("s3cret", body) != domain.sign("other", body)


def test_backoff_doubles_up_to_a_cap_then_dead_letter() -> None:
    waits = [domain.backoff(n, initial_ms=1000, max_ms=5000).total_seconds() for n in range(1, 6)]
    assert waits == [1, 2, 4, 5, 5]
    assert domain.after_failure(3, 4) == "pending"
    assert domain.after_failure(4, 4) == "dead"


def test_public_outbox_record_keeps_the_bytes() -> None:
    record = public_record(
        event_id="e1", topic="partner.p1.order-events.v1", key="o1", type_="t", value=b"{}", ts=1, seq=0
    )
    assert bytes(record["value"]) == b"{}" and record["_id"] == "e1" and record["pending"] is True
    assert (record["topic"], record["key"], record["type"]) == ("partner.p1.order-events.v1", "o1", "t")


# -- the ticket table ---------------------------------------------------------------------------------


def test_a_resolved_ticket_is_final_and_guards_come_from_the_table() -> None:
    flow, status = domain.TICKET_FLOW, domain.TicketStatus
    assert flow.final() == {status.RESOLVED}
    assert flow.guard(status.RESOLVED) == {"status": {"$in": ["answered", "open"]}}
    assert not flow.can_move(status.RESOLVED, status.OPEN)
    assert domain.DELIVERY_FLOW.guard(domain.DeliveryStatus.PENDING) == {"status": {"$in": ["dead", "delivered"]}}
    assert domain.DELIVERY_FLOW.guard(domain.DeliveryStatus.CANCELLED) == {"status": {"$in": ["pending"]}}


def test_a_message_moves_the_ticket_to_whoever_must_answer_next() -> None:
    due = domain.due_at(NOW, 30)
    ticket = {"user_id": "u1", "status": "open", "due_at": due}
    staff = domain.message_effect(ticket, caller_id="s1", caller_is_staff=True, now=NOW, sla_minutes=30)
    assert (staff.author, staff.status, staff.history) == ("staff", "answered", True)
    assert staff.fields == {"due_at": None, "answered_at": NOW}
    # The buyer writing again keeps the earliest unanswered time; no new history entry.
    again = domain.message_effect(ticket, caller_id="u1", caller_is_staff=False, now=NOW, sla_minutes=30)
    assert (again.author, again.status, again.history, again.fields["due_at"]) == ("buyer", "open", False, due)
    # A staff member who owns the ticket writes as its buyer.
    own = domain.message_effect(ticket, caller_id="u1", caller_is_staff=True, now=NOW, sla_minutes=30)
    assert own.author == "buyer"
    with pytest.raises(RuleViolation) as err:
        domain.message_effect(
            {**ticket, "status": "resolved"}, caller_id="u1", caller_is_staff=False, now=NOW, sla_minutes=30
        )
    assert err.value.slug == "ticket-resolved"


def test_the_staff_queue_puts_urged_then_overdue_then_soonest_due_first() -> None:
    def ticket(name: str, due: datetime | None) -> dict[str, object]:
        return {"_id": name, "status": "open" if due else "answered", "due_at": due, "created_at": NOW}

    later = NOW + timedelta(hours=5)
    tickets = [
        (ticket("waiting-for-buyer", None), False),
        (ticket("due-later", later), False),
        (ticket("overdue", NOW - timedelta(minutes=1)), False),
        (ticket("urged", later + timedelta(hours=1)), True),
        (ticket("due-sooner", NOW + timedelta(hours=1)), False),
    ]
    ranked = sorted(tickets, key=lambda t: domain.queue_rank(t[0], t[1], NOW))
    assert [t["_id"] for t, _ in ranked] == ["urged", "overdue", "due-sooner", "due-later", "waiting-for-buyer"]
