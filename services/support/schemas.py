"""The support HTTP API's request bodies and how stored documents are shown."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar.openapi.spec import OpenAPIType, Schema

from services.support import domain
from shared.limits import AnyQuantity, Position
from shared.strict_bodies import documented

DESCRIPTION_MAX = 5000
MESSAGE_MAX = 5000
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Body = Annotated[str, msgspec.Meta(min_length=1, max_length=50_000)]
Category = Annotated[str, msgspec.Meta(min_length=1, max_length=60)]


# -- tickets ------------------------------------------------------------------------------------


class NewTicket(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    kind: domain.TicketKindName
    description: Annotated[str, msgspec.Meta(min_length=1, max_length=DESCRIPTION_MAX)]


class NewMessage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=MESSAGE_MAX)]


class ResolveRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    action: domain.ResolveActionName
    note: Annotated[str, msgspec.Meta(max_length=MESSAGE_MAX)] = ""
    quantity: AnyQuantity | None = None
    """Reissue only: how many keys to replace (default: the order's quantity)."""


def ticket_view(doc: dict[str, Any], now: datetime, *, full: bool) -> dict[str, Any]:
    view = {
        "ticket_id": doc["_id"],
        "order_id": doc["order_id"],
        "user_id": doc["user_id"],
        "kind": doc["kind"],
        "status": doc["status"],
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
        "due_at": doc.get("due_at"),
        "overdue": domain.is_overdue(doc, now),
        "resolution": doc.get("resolution"),
    }
    if full:
        view.update(
            description=doc["description"],
            messages=doc.get("messages", []),
            evidence=doc.get("evidence", []),
            history=doc.get("history", []),
        )
    return view


def resolved_view(ticket: dict[str, Any]) -> dict[str, Any]:
    return {"ticket_id": ticket["_id"], "status": ticket["status"], "resolution": ticket["resolution"]}


# -- announcements and help articles ----------------------------------------------------------------


class NewAnnouncement(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Title
    body: Body
    pinned: bool = False
    published: bool = True


class AnnouncementPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Title | None = None
    body: Body | None = None
    pinned: bool | None = None
    published: bool | None = None


class NewArticle(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Title
    body: Body
    category: Category = "general"
    position: Position = 0
    published: bool = True


class ArticlePatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Title | None = None
    body: Body | None = None
    category: Category | None = None
    position: Position | None = None
    published: bool | None = None


def changes_of(patch_body: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body sets (absent and null ones are left alone)."""
    return {k: v for k, v in msgspec.structs.asdict(patch_body).items() if v is not None}


def public_id(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """A stored document as an API object: `_id` renamed to `<name>`."""
    out = {k: v for k, v in doc.items() if k != "_id"}
    out[name] = doc["_id"]
    return out


# -- notifications -----------------------------------------------------------------------------------


def notification_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "notification_id": doc["_id"],
        "kind": doc["kind"],
        "subject": doc["subject"],
        "body": doc["body"],
        "ref": doc.get("ref", {}),
        "created_at": doc["created_at"],
        "read": doc.get("read_at") is not None,
        "read_at": doc.get("read_at"),
        "email_status": (doc.get("email") or {}).get("status"),
    }


# -- webhooks ----------------------------------------------------------------------------------------


class NewWebhook(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2000), documented(pattern=domain.WEBHOOK_URL_PATTERN)]
    events: Annotated[
        list[str],
        documented(min_items=1, items=Schema(type=OpenAPIType.STRING, enum=sorted(domain.WEBHOOK_EVENT_NAMES))),
    ] = msgspec.field(default_factory=lambda: ["order.status-changed"])


def webhook_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "webhook_id": doc["_id"],
        "url": doc["url"],
        "events": doc["events"],
        "created_at": doc["created_at"],
    }


def delivery_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "delivery_id": doc["_id"],
        "webhook_id": doc["webhook_id"],
        "event_id": doc["event_id"],
        "order_id": doc["order_id"],
        "status": doc["status"],
        "attempts": doc.get("attempts", 0),
        "next_attempt_at": doc.get("next_attempt_at") if doc["status"] == "pending" else None,
        "created_at": doc["created_at"],
        "delivered_at": doc.get("delivered_at"),
        "log": doc.get("log", []),
        "payload": msgspec.json.decode(bytes(doc["payload"])),
    }


# -- partner feed ------------------------------------------------------------------------------------


class FeedReplayRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    since: datetime
    """Republish the partner's events that happened at or after this time (at most 30 days ago)."""


def replay_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "replay_id": doc["_id"],
        "since": doc["since"],
        "status": doc["status"],
        "events": doc["events"],
        "published": doc["published"],
        "requested_at": doc["requested_at"],
        "finished_at": doc.get("finished_at"),
    }
