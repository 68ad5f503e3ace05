"""Announcements (平台公告) and help-center articles (帮助中心) through the api: staff CRUD,
public lists (published only, pinned first, paginated), bad input and wrong roles; every change
is a `support.*-changed` event on `support.events`."""

from __future__ import annotations

import json

import httpx

from shared.contracts import topics
from shared.contracts.envelope import new_id
from tests.helpers import auth, eventually
from tests.integration.kit import read_topic

STAFF = auth(roles=("staff",))
ADMIN = auth(roles=("admin", "staff"))
BUYER = auth()


async def test_announcements_crud_and_public_list(api: httpx.AsyncClient) -> None:
    tag = new_id()[:8]
    made = {}
    for name, pinned, published in (
        ("old", False, True),
        ("pinned", True, True),
        ("draft", False, False),
        ("new", False, True),
    ):
        r = await api.post(
            "/api/v1/admin/announcements",
            json={"title": f"{tag} {name}", "body": f"{name} body 内容", "pinned": pinned, "published": published},
            headers=STAFF,
        )
        assert r.status_code == 201, r.text
        made[name] = r.json()["announcement_id"]

    r = await api.get("/api/v1/announcements", params={"page_size": 100})
    assert r.status_code == 200
    items = r.json()["items"]
    ours = [a["title"] for a in items if a["title"].startswith(tag)]
    assert ours == [f"{tag} pinned", f"{tag} new", f"{tag} old"]  # pinned first, then newest; no draft
    pinned_flags = [a["pinned"] for a in items]
    assert pinned_flags == sorted(pinned_flags, reverse=True)  # every pinned one before any other
    assert (await api.get(f"/api/v1/announcements/{made['draft']}")).status_code == 404
    assert (await api.get(f"/api/v1/announcements/{made['pinned']}")).json()["body"] == "pinned body 内容"

    # pagination
    page1 = (await api.get("/api/v1/announcements", params={"page_size": 1, "page": 1})).json()
    page2 = (await api.get("/api/v1/announcements", params={"page_size": 1, "page": 2})).json()
    assert page1["total"] >= 3 and len(page1["items"]) == 1 and page1["items"] != page2["items"]

    # staff publish the draft, edit, delete
    r = await api.patch(f"/api/v1/admin/announcements/{made['draft']}", json={"published": True}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["published"] is True and r.json()["published_at"]
    assert (await api.get(f"/api/v1/announcements/{made['draft']}")).status_code == 200
    r = await api.delete(f"/api/v1/admin/announcements/{made['old']}", headers=STAFF)
    assert r.status_code == 204
    assert (await api.get(f"/api/v1/announcements/{made['old']}")).status_code == 404
    assert (await api.delete(f"/api/v1/admin/announcements/{made['old']}", headers=STAFF)).status_code == 404
    admin_list = (await api.get("/api/v1/admin/announcements", params={"page_size": 100}, headers=STAFF)).json()
    assert {a["announcement_id"] for a in admin_list["items"]} >= {made["pinned"], made["draft"], made["new"]}


async def test_announcements_refuse_buyers_anonymous_and_bad_input(api: httpx.AsyncClient) -> None:
    body = {"title": "t", "body": "b"}
    assert (await api.post("/api/v1/admin/announcements", json=body)).status_code == 401
    r = await api.post("/api/v1/admin/announcements", json=body, headers=BUYER)
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    before = (await api.get("/api/v1/admin/announcements", headers=STAFF)).json()["total"]
    for bad in ({"title": "", "body": "b"}, {"body": "b"}, {"title": "t", "body": "b", "pinned": "yes"}, {"x": 1}):
        r = await api.post("/api/v1/admin/announcements", json=bad, headers=STAFF)
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"].startswith("application/problem+json") and r.json()["errors"]
    assert (await api.get("/api/v1/admin/announcements", headers=STAFF)).json()["total"] == before
    r = await api.get("/api/v1/announcements", params={"page_size": 1000})
    assert r.status_code in (400, 422)


async def test_help_articles_crud_and_public_list(api: httpx.AsyncClient) -> None:
    category = "c-" + new_id()[:8]
    ids = []
    for title, position, published in (("Second", 2, True), ("First", 1, True), ("Hidden", 0, False)):
        r = await api.post(
            "/api/v1/admin/help/articles",
            json={
                "title": title,
                "body": f"{title} 帮助",
                "category": category,
                "position": position,
                "published": published,
            },
            headers=STAFF,
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["article_id"])
    r = await api.get("/api/v1/help/articles", params={"category": category})
    assert [a["title"] for a in r.json()["items"]] == ["First", "Second"]
    assert (await api.get(f"/api/v1/help/articles/{ids[1]}")).json()["body"] == "First 帮助"
    assert (await api.get(f"/api/v1/help/articles/{ids[2]}")).status_code == 404

    r = await api.patch(f"/api/v1/admin/help/articles/{ids[2]}", json={"published": True, "position": 3}, headers=STAFF)
    assert r.status_code == 200
    r = await api.get("/api/v1/help/articles", params={"category": category})
    assert [a["title"] for a in r.json()["items"]] == ["First", "Second", "Hidden"]
    assert (
        await api.post("/api/v1/admin/help/articles", json={"title": "x", "body": "y"}, headers=BUYER)
    ).status_code == 403
    assert (
        await api.patch(f"/api/v1/admin/help/articles/{ids[0]}", json={"title": ""}, headers=STAFF)
    ).status_code == 422
    assert (await api.delete(f"/api/v1/admin/help/articles/{ids[0]}", headers=STAFF)).status_code == 204
    r = await api.get("/api/v1/help/articles", params={"category": category})
    assert [a["title"] for a in r.json()["items"]] == ["First", "Hidden"]


async def test_every_article_and_announcement_change_is_an_event(api: httpx.AsyncClient, infra: dict[str, str]) -> None:
    r = await api.post(
        "/api/v1/admin/help/articles", json={"title": "事件文章", "body": "正文", "category": "e2e"}, headers=STAFF
    )
    assert r.status_code == 201, r.text
    article_id = r.json()["article_id"]
    assert (
        await api.patch(f"/api/v1/admin/help/articles/{article_id}", json={"published": False}, headers=STAFF)
    ).status_code == 200
    assert (await api.delete(f"/api/v1/admin/help/articles/{article_id}", headers=STAFF)).status_code == 204
    r = await api.post("/api/v1/admin/announcements", json={"title": "事件公告", "body": "内容"}, headers=STAFF)
    assert r.status_code == 201, r.text
    announcement_id = r.json()["announcement_id"]

    async def changes(kind: str, key: str, count: int) -> list[dict[str, object]] | None:
        records = await read_topic(infra["KAFKA_BOOTSTRAP_SERVERS"], topics.SUPPORT)
        found = [
            e["data"]
            for e in (json.loads(r.value) for r in records)
            if e["type"] == f"support.{kind}-changed" and e["key"] == key
        ]
        return found if len(found) >= count else None

    articles = await eventually(lambda: changes("article", article_id, 3), timeout=30, message="3 article events")
    assert [(e["published"], e["deleted"]) for e in articles] == [(True, False), (False, False), (False, True)]
    assert {e["title"] for e in articles} == {"事件文章"} and articles[0]["category"] == "e2e"
    (announcement,) = await eventually(
        lambda: changes("announcement", announcement_id, 1), timeout=30, message="announcement event"
    )
    assert announcement["published"] is True and announcement["title"] == "事件公告"
