"""The assistant's operations: answer a question; keep the content (store and in-memory index)
in step with what support and catalog announce; keep the SKU and order projections in step with
the events."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta

from services.assistant import domain
from services.assistant.deps import AssistantDeps
from services.assistant.domain import Answer, OrderView, SourceKind
from services.assistant.index import doc_key
from shared.auth import Caller
from shared.contracts.catalog import ProductChanged, SkuChanged
from shared.contracts.order import OrderPlaced, OrderStatusChanged, OrderUrged
from shared.contracts.support import AnnouncementChanged, ArticleChanged, TicketOpened, TicketResolved
from shared.errors import validation_problem
from shared.messaging.outbox import Tx

log = logging.getLogger(__name__)

ORDER_INTENTS = frozenset({"order_status", "urge", "refund", "invalid_key", "human"})
HINT_BELOW = 0.5
CURSOR_OVERLAP = timedelta(seconds=10)
"""Read the store's changes from a little before the last one seen: a write stamped just before
another may commit just after it (two replicas handling events). Applying twice is harmless."""


def _now() -> datetime:
    return datetime.now(UTC)


# -- asking -------------------------------------------------------------------------------


async def ask(
    deps: AssistantDeps,
    *,
    question: str,
    order_id: str | None,
    caller: Caller | None,
    now: datetime | None = None,
) -> Answer:
    """Answer one question. Only a signed-in caller's own orders are ever looked at; an order id
    of someone else's order is "not found", exactly like an id that does not exist."""
    if not domain.normalize(question):
        raise validation_problem([{"field": "question", "message": "ask something"}])
    now = now or _now()
    detected = domain.detect(question)
    full, parts = domain.order_refs(question)
    if order_id:
        full = [order_id.strip().lower(), *full]
    order_asked = bool(full or parts)
    intent = detected.intent if detected else ("order_status" if order_asked else "faq")

    order: OrderView | None = None
    if caller is not None and intent in ORDER_INTENTS:
        order = await _callers_order(deps, caller.user_id, full, parts, intent)

    query = domain.tokens(question)
    hits = deps.index.search(query)
    if detected and detected.hint and (not hits or hits[0].coverage < HINT_BELOW):
        # The question's own words did not find the intent's article: look again with the
        # intent's words added (e.g. "能退吗" -> 退款 售后).
        query += [w for w in domain.tokens(detected.hint) if w not in query]
        hits = deps.index.search(query)
    return domain.compose(
        detected=detected,
        hits=hits,
        query=query,
        signed_in=caller is not None,
        order=order,
        order_asked=order_asked,
        now=now,
        wait_minutes=deps.settings.urge_wait_minutes,
        threshold=deps.settings.answer_threshold,
    )


async def _callers_order(
    deps: AssistantDeps, user_id: str, full: list[str], parts: list[str], intent: domain.Intent
) -> OrderView | None:
    store = deps.store
    if full:
        return domain.owned_by(await store.own_order(user_id, full[0]), user_id)
    if parts:
        # A prefix names an order only when exactly one of the caller's orders starts with it.
        matches = await store.own_orders_starting(user_id, parts[0])
        return domain.owned_by(matches[0], user_id) if len(matches) == 1 else None
    recent = [o for o in await store.recent_orders(user_id) if domain.owned_by(o, user_id)]
    return domain.pick_order(recent, intent)


# -- published content ----------------------------------------------------------------------


def fingerprint(title: str, body: str) -> str:
    return hashlib.sha256(f"{title}\n{body}".encode()).hexdigest()[:24]


def _millis(at: datetime) -> datetime:
    """MongoDB keeps milliseconds: compare stamps at that precision, so an event's own stamp is
    never "newer" than the same stamp read back from the store."""
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


async def _put(
    tx: Tx,
    deps: AssistantDeps,
    kind: SourceKind,
    source_id: str,
    *,
    version: datetime | int,
    published: bool,
    title: str,
    body: str,
    now: datetime | None,
) -> bool:
    return await deps.store.put_content(
        tx,
        kind,
        source_id,
        version=version,
        published=published and bool(body.strip()),
        title=title,
        body=body,
        fingerprint=fingerprint(title, body),
        now=now or _now(),
    )


async def article_changed(tx: Tx, deps: AssistantDeps, event: ArticleChanged, now: datetime | None = None) -> bool:
    """A help article published or edited is answerable once the index follows the store (every
    replica within `index_poll_seconds`); unpublished or deleted, it is taken down."""
    return await _put(
        tx,
        deps,
        "article",
        event.article_id,
        version=_millis(event.updated_at),
        published=event.published,
        title=event.title,
        body=event.body,
        now=now,
    )


async def announcement_changed(
    tx: Tx, deps: AssistantDeps, event: AnnouncementChanged, now: datetime | None = None
) -> bool:
    return await _put(
        tx,
        deps,
        "announcement",
        event.announcement_id,
        version=_millis(event.updated_at),
        published=event.published,
        title=event.title,
        body=event.body,
        now=now,
    )


async def product_changed(tx: Tx, deps: AssistantDeps, event: ProductChanged, now: datetime | None = None) -> bool:
    """A listed product's service notes and description are answerable; unlisted (no SKU on sale)
    or without any text, it is taken down. The highest revision wins."""
    body = "\n".join(p for p in (event.service_notes, event.description) if p.strip())
    return await _put(
        tx,
        deps,
        "product",
        event.product_id,
        version=event.revision,
        published=event.listed,
        title=event.name,
        body=body,
        now=now,
    )


async def refresh_index(deps: AssistantDeps) -> int:
    """Apply the store's content changes since the last round to this process's index (all of
    them the first time). Returns how many documents changed in the index."""
    since = None if deps.cursor is None else deps.cursor - CURSOR_OVERLAP
    changed = 0
    for doc in await deps.store.changed_since(since):
        if doc.get("published"):
            changed += deps.index.put(doc["kind"], doc["source_id"], doc["title"], doc["body"], doc["fingerprint"])
        else:
            changed += deps.index.remove(doc_key(doc["kind"], doc["source_id"]))
        deps.cursor = doc["changed_at"] if deps.cursor is None else max(deps.cursor, doc["changed_at"])
    if deps.cursor is None:
        deps.cursor = datetime(1970, 1, 1, tzinfo=UTC)
    return changed


# -- projections from events ----------------------------------------------------------------


async def learn_sku(tx: Tx, deps: AssistantDeps, event: SkuChanged) -> None:
    """A SKU's names and delivery mode (never its prices)."""
    await deps.store.put_sku(
        tx,
        {
            "_id": event.sku_id,
            "revision": event.revision,
            "label": f"{event.product_name} {event.name}".strip(),
            "product_id": event.product_id,
            "delivery_mode": event.delivery_mode,
            "on_sale": event.on_sale,
        },
    )


async def order_placed(tx: Tx, deps: AssistantDeps, event: OrderPlaced, at: datetime) -> None:
    await deps.store.order_placed(
        tx,
        {
            "_id": event.order_id,
            "user_id": event.user_id,
            "sku_id": event.sku_id,
            "quantity": event.quantity,
            "total_cents": event.total_cents,
            "delivery_mode": event.delivery_mode,
            "expires_at": event.expires_at,
            "created_at": at,
        },
    )


async def order_status_changed(tx: Tx, deps: AssistantDeps, event: OrderStatusChanged) -> None:
    await deps.store.order_status(
        tx,
        event.order_id,
        {
            "user_id": event.user_id,
            "status": event.status,
            "sku_id": event.sku_id,
            "quantity": event.quantity,
            "total_cents": event.total_cents,
        },
        event.at,
    )


async def ticket_opened(tx: Tx, deps: AssistantDeps, event: TicketOpened) -> None:
    await deps.store.ticket_opened(tx, event.order_id, event.user_id, event.ticket_id)


async def ticket_resolved(tx: Tx, deps: AssistantDeps, event: TicketResolved) -> None:
    await deps.store.ticket_resolved(tx, event.order_id, event.ticket_id)


async def order_urged(tx: Tx, deps: AssistantDeps, event: OrderUrged) -> None:
    await deps.store.order_urged(tx, event.order_id, event.user_id, event.urged_at)
