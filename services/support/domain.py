"""Pure rules of the support service: ticket life cycle and resolution, SLA, evidence checks,
notification texts, the public partner event and webhook signing/backoff. No I/O here."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from shared.contracts.order import OrderStatusChanged
from shared.contracts.support import PARTNER_EVENT_TYPE, PartnerOrderEvent, ResolveAction, TicketKind
from shared.money import format_price
from shared.transitions import Transitions

# One definition with the events that carry them.
TicketKindName = TicketKind
ResolveActionName = ResolveAction


class TicketStatus(StrEnum):
    OPEN = "open"
    """Waiting for staff."""
    ANSWERED = "answered"
    """Staff wrote; waiting for the buyer."""
    RESOLVED = "resolved"


TICKET_FLOW: Transitions[TicketStatus] = Transitions(
    {
        # A second message from the same side keeps the status (and is still allowed), so the
        # message guard is the same table as every other move.
        TicketStatus.OPEN: {TicketStatus.OPEN, TicketStatus.ANSWERED, TicketStatus.RESOLVED},
        TicketStatus.ANSWERED: {TicketStatus.ANSWERED, TicketStatus.OPEN, TicketStatus.RESOLVED},
        TicketStatus.RESOLVED: (),
    }
)
"""The ticket's life cycle; the store's guarded updates are built from it."""


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    """Failed `webhook_max_attempts` times: the dead-letter list, until replayed."""
    CANCELLED = "cancelled"
    """Its webhook was removed."""


DELIVERY_FLOW: Transitions[DeliveryStatus] = Transitions(
    {
        DeliveryStatus.PENDING: {DeliveryStatus.DELIVERED, DeliveryStatus.DEAD, DeliveryStatus.CANCELLED},
        # A replay queues a dead or delivered delivery again; a pending one is left alone.
        DeliveryStatus.DEAD: {DeliveryStatus.PENDING},
        DeliveryStatus.DELIVERED: {DeliveryStatus.PENDING},
        DeliveryStatus.CANCELLED: (),
    }
)
"""A partner webhook delivery's life cycle (a failed try that will be retried stays pending)."""


class ReplayStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


REPLAY_FLOW: Transitions[ReplayStatus] = Transitions(
    {
        ReplayStatus.QUEUED: {ReplayStatus.RUNNING, ReplayStatus.DONE},
        # A replay whose worker died is taken over by another: running again.
        ReplayStatus.RUNNING: {ReplayStatus.RUNNING, ReplayStatus.DONE},
        ReplayStatus.DONE: (),
    }
)
"""A partner feed replay's life cycle."""

# Orders a buyer may open after-sales on, and the ones staff may reissue or refund.
TICKETABLE_ORDER_STATUSES = frozenset({"paid", "delivering", "delivered", "refunding", "refunded"})
COMPENSABLE_ORDER_STATUSES = frozenset({"delivered"})
# An urge stops mattering once the order reaches one of these.
SETTLED_ORDER_STATUSES = frozenset({"delivered", "cancelled", "expired", "refunded"})
ORDER_STATUSES = (
    "pending_payment",
    "paid",
    "delivering",
    "delivered",
    "cancelled",
    "expired",
    "refunding",
    "refunded",
)


class RuleViolation(Exception):
    """A request the rules refuse: `status` (409/422), a slug and a human detail."""

    def __init__(self, status: int, slug: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.field = field


# -- tickets --------------------------------------------------------------------------------


def due_at(waiting_since: datetime, sla_minutes: float) -> datetime:
    return waiting_since + timedelta(minutes=sla_minutes)


def is_overdue(ticket: dict[str, Any], now: datetime) -> bool:
    """Flagged when it waits for staff (`due_at` set) past the SLA."""
    due = ticket.get("due_at")
    return ticket.get("status") not in TICKET_FLOW.final() and due is not None and due <= now


def queue_rank(ticket: dict[str, Any], urged: bool, now: datetime) -> tuple[bool, bool, datetime, datetime]:
    """Sort key of the staff queue: tickets of urged orders first, then overdue ones, then by
    due time (a ticket waiting for the buyer has none and goes last), then the oldest."""
    far = datetime.max.replace(tzinfo=now.tzinfo)
    return (not urged, not is_overdue(ticket, now), ticket.get("due_at") or far, ticket["created_at"])


def check_ticketable(order: dict[str, Any] | None, user_id: str) -> dict[str, Any]:
    """The caller's own order, or a 404-style refusal that says nothing about other people's."""
    if order is None or order.get("user_id") != user_id:
        raise RuleViolation(404, "not-found", "no such order")
    if order.get("status") not in TICKETABLE_ORDER_STATUSES:
        raise RuleViolation(
            409, "order-not-eligible", f"an order that is {order.get('status')} cannot have an after-sales request"
        )
    return order


@dataclass(frozen=True)
class Resolution:
    action: ResolveActionName
    note: str
    quantity: int | None = None


def check_resolution(ticket: dict[str, Any], order: dict[str, Any] | None, resolution: Resolution) -> str:
    """What resolving `ticket` does: "apply" (first resolution), "same" (a repeat of the
    resolution already made: answer it again, emit nothing) or a RuleViolation."""
    if not TICKET_FLOW.can_move(TicketStatus(ticket["status"]), TicketStatus.RESOLVED):
        done = ticket.get("resolution") or {}
        if done.get("action") == resolution.action:
            return "same"
        raise RuleViolation(409, "already-resolved", f"the ticket was already resolved with {done.get('action')}")
    if resolution.action in ("reissue", "refund"):
        if order is None or order.get("status") not in COMPENSABLE_ORDER_STATUSES:
            status = order.get("status") if order else "unknown"
            raise RuleViolation(
                409, "order-not-eligible", f"only a delivered order can get a {resolution.action}; it is {status}"
            )
        if resolution.action == "refund" and order.get("refund_ticket_id"):
            raise RuleViolation(409, "already-refunded", "a refund was already approved for this order")
        if resolution.quantity is not None and not 1 <= resolution.quantity <= int(order["quantity"]):
            raise RuleViolation(
                422, "validation-error", "quantity must be between 1 and the order's quantity", "quantity"
            )
    return "apply"


def resolution_record(resolution: Resolution, order: dict[str, Any] | None, *, by: str, at: datetime) -> dict[str, Any]:
    """What the ticket keeps of its resolution; a reissue replaces the order's quantity unless
    staff said fewer, a refund gives back the order's total."""
    done: dict[str, Any] = {"action": resolution.action, "note": resolution.note, "by": by, "at": at}
    if resolution.action == "reissue" and order is not None:
        done["quantity"] = resolution.quantity or int(order["quantity"])
    if resolution.action == "refund" and order is not None:
        done["amount_cents"] = int(order["total_cents"])
    return done


@dataclass(frozen=True)
class MessageEffect:
    """How a new message changes its ticket."""

    author: Literal["buyer", "staff"]
    status: TicketStatus
    fields: dict[str, Any]
    """Fields to set on the ticket besides the status."""
    history: bool
    """Whether the status changes (and so gets a history entry)."""


def message_effect(
    ticket: dict[str, Any], *, caller_id: str, caller_is_staff: bool, now: datetime, sla_minutes: float
) -> MessageEffect:
    """A staff answer clears the SLA clock; a buyer message makes the ticket wait for staff
    again, keeping the earliest unanswered time. Raises for a ticket that takes no messages."""
    # Staff answering a ticket they do not own; the owner (even if staff) is the buyer.
    from_staff = caller_is_staff and ticket["user_id"] != caller_id
    current = TicketStatus(ticket["status"])
    target = TicketStatus.ANSWERED if from_staff else TicketStatus.OPEN
    if not TICKET_FLOW.can_move(current, target):
        raise RuleViolation(409, "ticket-resolved", "the ticket is resolved; open a new one")
    if from_staff:
        fields: dict[str, Any] = {"due_at": None, "answered_at": now}
    else:
        fields = {"due_at": ticket.get("due_at") or due_at(now, sla_minutes)}
    return MessageEffect(
        author="staff" if from_staff else "buyer", status=target, fields=fields, history=current != target
    )


# -- evidence -------------------------------------------------------------------------------

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)


def sniff_type(data: bytes) -> str | None:
    """The file's type from its first bytes; a renamed file does not pass as an image."""
    for magic, kind in _SIGNATURES:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_evidence(
    files: list[tuple[str, bytes]], *, max_bytes: int, max_files: int, allowed: frozenset[str]
) -> list[dict[str, str]]:
    """Validation errors ({field, message}) for the uploaded evidence; empty when all is fine."""
    errors: list[dict[str, str]] = []
    if len(files) > max_files:
        errors.append({"field": "evidence", "message": f"at most {max_files} files"})
    for i, (name, data) in enumerate(files):
        field = f"evidence[{i}]"
        if not data:
            errors.append({"field": field, "message": f"{name or 'file'} is empty"})
        elif len(data) > max_bytes:
            errors.append({"field": field, "message": f"{name or 'file'} is larger than {max_bytes} bytes"})
        elif sniff_type(data) not in allowed:
            errors.append({"field": field, "message": f"{name or 'file'} is not one of {', '.join(sorted(allowed))}"})
    return errors


# -- notifications --------------------------------------------------------------------------

ORDER_NOTICES = {
    "delivered": ("Your order {order} was delivered", "Order {order} was delivered. Open the order center to see it."),
    "refunded": (
        "Your order {order} was refunded",
        "Order {order} was refunded: {amount} went back to your balance.",
    ),
}


def order_notice(event: OrderStatusChanged) -> tuple[str, str] | None:
    """(subject, body) to tell the buyer about this status change, or None. Card keys are never
    in it: the event carries none, and the buyer reads them in the order center."""
    template = ORDER_NOTICES.get(event.status)
    if template is None:
        return None
    short = event.order_id[:12]
    return template[0].format(order=short), template[1].format(order=short, amount=format_price(event.total_cents))


def ticket_notice(ticket_id: str, change: str, detail: str = "") -> tuple[str, str]:
    short = ticket_id[:12]
    subjects = {
        "opened": f"We received your after-sales request {short}",
        "answered": f"Support answered your after-sales request {short}",
        "reissue": f"After-sales request {short}: a replacement is on its way",
        "refund": f"After-sales request {short}: refund approved",
        "reject": f"After-sales request {short} was declined",
    }
    subject = subjects.get(change, f"After-sales request {short} changed")
    return subject, f"{subject}.{' ' + detail if detail else ''}"


# -- partner feed and webhooks ----------------------------------------------------------------


def partner_event(event: OrderStatusChanged, *, event_id: str) -> PartnerOrderEvent | None:
    """The public event for a partner's order (partner_key_id set), None for anyone else's."""
    if not event.partner_key_id:
        return None
    return PartnerOrderEvent(
        event_id=event_id,
        type=PARTNER_EVENT_TYPE,
        occurred_at=event.at,
        order_id=event.order_id,
        partner_user_id=event.user_id,
        status=event.status,
        sku_id=event.sku_id,
        quantity=event.quantity,
        total_cents=event.total_cents,
        site=event.site,
    )


def encode_public(event: PartnerOrderEvent) -> bytes:
    return msgspec.json.encode(event)


WEBHOOK_EVENT_NAMES = frozenset({PARTNER_EVENT_TYPE, *(f"order.{s}" for s in ORDER_STATUSES)})
WEBHOOK_URL_PATTERN = r"^https?://[A-Za-z0-9.-]*[A-Za-z0-9](?::[0-9]{1,5})?(?:[/?#]\S*)?$"
"""What the document states a webhook URL looks like (`check_webhook` decides, with its reasons)."""


def webhook_wants(events: list[str], status: str) -> bool:
    """`order.status-changed` subscribes to every change, `order.<status>` to one status."""
    return PARTNER_EVENT_TYPE in events or f"order.{status}" in events


def check_webhook(url: str, events: list[str], *, require_https: bool) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    parts = urlsplit(url)
    allowed_schemes = ("https",) if require_https else ("http", "https")
    if parts.scheme not in allowed_schemes or not parts.hostname:
        errors.append({"field": "url", "message": f"must be an absolute {' or '.join(allowed_schemes)} URL"})
    elif len(url) > 2000:
        errors.append({"field": "url", "message": "too long"})
    elif require_https and _internal_host(parts.hostname):
        # In production a webhook must not make us call our own network.
        errors.append({"field": "url", "message": "must point to a public host"})
    if not events:
        errors.append({"field": "events", "message": "subscribe to at least one event"})
    for i, name in enumerate(events):
        if name not in WEBHOOK_EVENT_NAMES:
            errors.append({"field": f"events[{i}]", "message": f"unknown event {name!r}"})
    return errors


def _internal_host(host: str) -> bool:
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast


SIGNATURE_HEADER = "X-Kameng-Signature"


def sign(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of the exact body bytes with the webhook's secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempts: int, *, initial_ms: int, max_ms: int) -> timedelta:
    """Wait before the next try after `attempts` failures: initial, 2x, 4x, ... capped."""
    return timedelta(milliseconds=min(initial_ms * 2 ** max(attempts - 1, 0), max_ms))


def after_failure(attempts: int, max_attempts: int) -> Literal["pending", "dead"]:
    return "dead" if attempts >= max_attempts else "pending"


def webhook_headers(*, secret: str, body: bytes, event_id: str, delivery_id: str) -> dict[str, str]:
    """What a delivery POST carries: the signature over the exact body and the ids receivers
    deduplicate on."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body),
        "X-Kameng-Event-Id": event_id,
        "X-Kameng-Delivery-Id": delivery_id,
        "User-Agent": "Kameng-Webhooks/1",
    }


NO_OFFSET = "a time with its offset, e.g. 2026-11-22T05:11:32Z"


def check_replay_since(since: datetime, now: datetime, *, max_days: int) -> list[dict[str, str]]:
    """A replay starts at most `max_days` back and not in the future."""
    if since.tzinfo is None:
        return [{"field": "since", "message": NO_OFFSET}]
    if since > now:
        return [{"field": "since", "message": "must not be in the future"}]
    if since < now - timedelta(days=max_days):
        return [{"field": "since", "message": f"at most {max_days} days ago"}]
    return []


SUBSCRIPTION_REASONS = {
    "insufficient-balance": "your balance did not cover it; top up before the next run",
    "out-of-stock": "the product was sold out",
}


def subscription_failed_notice(
    subscription_id: str, run: int, reason: str, detail: str, next_run_at: datetime
) -> tuple[str, str]:
    """(subject, body) telling the owner a scheduled order (自动充值) failed on this run."""
    short = subscription_id[:12]
    why = SUBSCRIPTION_REASONS.get(reason, detail or reason)
    subject = f"Scheduled order {short} could not be placed (run {run})"
    when = next_run_at.strftime("%Y-%m-%d %H:%M UTC")
    return subject, f"{subject}: {why}. It is not retried; the next run is at {when}."


def key_expiry_notice(order_id: str, expires_at: datetime) -> tuple[str, str]:
    """(subject, body) of 订单到期提醒: the order's keys were never revealed and expire soon.
    The keys themselves are never in it."""
    short = order_id[:12]
    when = expires_at.strftime("%Y-%m-%d %H:%M UTC")
    subject = f"The card keys of order {short} expire on {when}"
    body = f"{subject} and have not been used yet. Open the order center (待使用) to see and use them."
    return subject, body
