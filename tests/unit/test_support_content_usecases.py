"""Support's help-center and announcement use cases against in-memory fakes: every create, edit,
(un)publication and deletion emits the document's public state (`support.article-changed`,
`support.announcement-changed`) in the same transaction, and a failed change emits nothing."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
import pytest

from services.support.deps import SupportDeps
from services.support.settings import SupportSettings
from services.support.store import ContentKind
from services.support.usecases import content
from shared.errors import Problem
from shared.messaging.outbox import Tx

T = TypeVar("T")


class FakeContentStore:
    """The content part of SupportStore over dicts (reads hand out copies, like a database)."""

    def __init__(self) -> None:
        self.docs: dict[ContentKind, dict[str, dict[str, Any]]] = {"article": {}, "announcement": {}}

    async def add_content(self, kind: ContentKind, doc: dict[str, Any], *, tx: Tx) -> None:
        self.docs[kind][doc["_id"]] = copy.deepcopy(doc)

    async def change_content(
        self, kind: ContentKind, content_id: str, changes: dict[str, Any], *, tx: Tx
    ) -> dict[str, Any] | None:
        doc = self.docs[kind].get(content_id)
        if doc is None:
            return None
        doc.update(copy.deepcopy(changes))
        return copy.deepcopy(doc)

    async def stamp_published(self, kind: ContentKind, content_id: str, at: Any, *, tx: Tx) -> None:
        if self.docs[kind][content_id].get("published_at") is None:
            self.docs[kind][content_id]["published_at"] = at

    async def remove_content(self, kind: ContentKind, content_id: str, *, tx: Tx) -> dict[str, Any] | None:
        return self.docs[kind].pop(content_id, None)


class FakeUnitOfWork:
    def __init__(self, store: FakeContentStore) -> None:
        self.store = store
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def run(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        saved = copy.deepcopy(self.store.docs)
        tx = Tx(db=None, session=None, producer="support")  # type: ignore[arg-type]
        try:
            result = await fn(tx)
        except BaseException:
            self.store.docs = saved
            raise
        self.events += [(env.type, msgspec.json.decode(bytes(env.data))) for env, _topic in tx.events]
        return result


@pytest.fixture
def deps() -> SupportDeps:
    store = FakeContentStore()
    return SupportDeps(
        settings=SupportSettings(),
        store=store,  # type: ignore[arg-type]
        uow=FakeUnitOfWork(store),  # type: ignore[arg-type]
        mailer=None,  # type: ignore[arg-type]
        webhooks=None,  # type: ignore[arg-type]
        feed_topics=None,  # type: ignore[arg-type]  (content never creates partner topics)
    )


def events(deps: SupportDeps) -> list[tuple[str, dict[str, Any]]]:
    uow: FakeUnitOfWork = deps.uow  # type: ignore[assignment]
    return uow.events


ARTICLE = {
    "title": "卡密在哪里看",
    "body": "在订单详情点「查看卡密」。",
    "category": "卡密",
    "position": 2,
    "published": True,
}


async def test_an_article_is_announced_on_publish_edit_unpublish_and_delete(deps: SupportDeps) -> None:
    doc = await content.create(deps, "article", dict(ARTICLE))
    article_id = doc["_id"]
    await content.update(deps, "article", article_id, {"body": "订单详情 → 查看卡密。"})
    await content.update(deps, "article", article_id, {"published": False})
    await content.remove(deps, "article", article_id)

    seen = events(deps)
    assert {t for t, _ in seen} == {"support.article-changed"}
    states = [(e["article_id"], e["published"], e["deleted"], e["body"]) for _, e in seen]
    assert states == [
        (article_id, True, False, "在订单详情点「查看卡密」。"),
        (article_id, True, False, "订单详情 → 查看卡密。"),
        (article_id, False, False, "订单详情 → 查看卡密。"),
        (article_id, False, True, "订单详情 → 查看卡密。"),
    ]
    first = seen[0][1]
    assert (first["title"], first["category"], first["position"]) == ("卡密在哪里看", "卡密", 2)
    stamps = [e["updated_at"] for _, e in seen]
    assert stamps == sorted(stamps)  # every change is newer than the one before


async def test_a_draft_is_announced_unpublished_and_an_announcement_carries_its_first_publication(
    deps: SupportDeps,
) -> None:
    draft = await content.create(deps, "article", {**ARTICLE, "published": False})
    assert events(deps)[-1][1]["published"] is False and events(deps)[-1][1]["article_id"] == draft["_id"]

    note = await content.create(deps, "announcement", {"title": "维护通知", "body": "今晚维护。", "published": False})
    assert events(deps)[-1][1]["published_at"] is None
    await content.update(deps, "announcement", note["_id"], {"published": True, "pinned": True})
    kind, published = events(deps)[-1]
    assert kind == "support.announcement-changed" and published["announcement_id"] == note["_id"]
    assert published["published"] is True and published["pinned"] is True and published["published_at"]


async def test_a_change_to_nothing_is_not_found_and_announces_nothing(deps: SupportDeps) -> None:
    for call in (
        content.update(deps, "article", "nope", {"title": "x"}),
        content.remove(deps, "announcement", "nope"),
    ):
        with pytest.raises(Problem) as err:
            await call
        assert err.value.status_code == 404
    assert events(deps) == []
