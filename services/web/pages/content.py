"""Notifications, the help center and announcements."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import Parameter
from litestar.response import Redirect, Template

from services.web.render import page
from services.web.visitor import Visitor


class ContentPages(Controller):
    path = "/"

    @get("/notifications")
    async def notifications(self, visitor: Visitor, page_no: int = Parameter(query="page", default=1)) -> Template:
        visitor.user()
        items = await visitor.api(
            "GET", "notifications", params={"page": max(1, min(page_no, 10_000)), "page_size": 20}
        )
        return page(visitor, "pages/notifications.html", notes=items)

    @post("/notifications/read-all")
    async def read_all(self, visitor: Visitor) -> Redirect:
        visitor.user()
        await visitor.api("POST", "notifications/read-all")
        return Redirect("/notifications", status_code=303)

    @get("/help")
    async def help_center(self, visitor: Visitor, category: str = "") -> Template:
        articles = await visitor.cached(
            f"help:{category[:60]}",
            "GET",
            "help/articles",
            params={"category": category[:60] or None, "page_size": 100},
        )
        groups: dict[str, list[dict[str, object]]] = {}
        for a in articles.get("items", []):
            groups.setdefault(str(a.get("category", "general")), []).append(a)
        return page(visitor, "pages/help.html", groups=groups)

    @get("/help/{article_id:str}")
    async def article(self, visitor: Visitor, article_id: str) -> Template:
        article = await visitor.public("GET", f"help/articles/{article_id}")
        return page(visitor, "pages/article.html", article=article, back="/help", back_key="nav.help")

    @get("/announcements")
    async def announcements(self, visitor: Visitor, page_no: int = Parameter(query="page", default=1)) -> Template:
        items = await visitor.public(
            "GET", "announcements", params={"page": max(1, min(page_no, 10_000)), "page_size": 20}
        )
        return page(visitor, "pages/announcements.html", items=items)

    @get("/announcements/{announcement_id:str}")
    async def announcement(self, visitor: Visitor, announcement_id: str) -> Template:
        item = await visitor.public("GET", f"announcements/{announcement_id}")
        return page(visitor, "pages/article.html", article=item, back="/announcements", back_key="nav.announcements")
