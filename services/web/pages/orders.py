"""订单中心: groups (待付款 / 待发货 / 已完成 / 售后 / 已关闭) and filters, the order page with its
status timeline, live while the order is on its way (htmx asks every 2 s and swaps the live part,
so the 卡密 appear without a reload), card keys with copy buttons, 催单 and 取消."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Controller, get, post
from litestar.params import Parameter
from litestar.response import Redirect, Template

from services.web.client import ApiProblem
from services.web.render import page
from services.web.visitor import Visitor

# Tab → the API's order group (after_sales lists the buyer's tickets instead).
GROUPS = ("all", "pending", "awaiting_delivery", "completed", "to_use", "after_sales", "closed")
STATUSES = ("pending_payment", "paid", "delivering", "delivered", "cancelled", "expired", "refunding", "refunded")
ON_ITS_WAY = {"pending_payment", "paid", "delivering", "refunding"}
CANCEL_WINDOW = timedelta(minutes=30)


def _created(order: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(order.get("created_at", "")).replace("Z", "+00:00"))
    except ValueError:
        return None


def may_cancel(order: dict[str, Any]) -> bool:
    """Offer 取消 within the window before delivery (the API decides; this only hides a button
    that would be refused)."""
    created = _created(order)
    return (
        order.get("status") in ("pending_payment", "paid", "delivering")
        and created is not None
        and datetime.now(UTC) - created < CANCEL_WINDOW
    )


async def live_parts(visitor: Visitor, order_id: str) -> dict[str, Any]:
    order: dict[str, Any] = await visitor.api("GET", f"orders/{order_id}")
    keys: list[dict[str, Any]] = []
    if order["status"] == "delivered":
        revealed = await visitor.api("GET", f"orders/{order_id}/card-keys")
        keys = list(revealed.get("card_keys", []))
    return {"order": order, "keys": keys, "live": order["status"] in ON_ITS_WAY, "may_cancel": may_cancel(order)}


class OrderPages(Controller):
    path = "/orders"

    @get("/")
    async def center(
        self,
        visitor: Visitor,
        group: str = "all",
        status: str = "",
        page_no: int = Parameter(query="page", default=1),
    ) -> Template:
        visitor.user()
        group = group if group in GROUPS else "all"
        status = status if status in STATUSES else ""
        page_no = max(1, min(page_no, 10_000))
        if group == "after_sales":
            tickets = await visitor.api("GET", "tickets", params={"page": page_no, "page_size": 20})
            return page(
                visitor,
                "pages/orders.html",
                group=group,
                status_filter=status,
                groups=GROUPS,
                statuses=STATUSES,
                tickets=tickets,
            )
        params: dict[str, Any] = {"page": page_no, "page_size": 20, "status": status or None}
        if group != "all":
            params["group"] = group
        orders = await visitor.api("GET", "orders", params=params)
        return page(
            visitor,
            "pages/orders.html",
            group=group,
            status_filter=status,
            groups=GROUPS,
            statuses=STATUSES,
            orders=orders,
        )

    @get("/{order_id:str}")
    async def detail(self, visitor: Visitor, order_id: str) -> Template:
        visitor.user()
        parts = await live_parts(visitor, order_id)
        template = "partials/order_live.html" if visitor.htmx else "pages/order.html"
        return page(visitor, template, **parts)

    @post("/{order_id:str}/urge")
    async def urge(self, visitor: Visitor, order_id: str) -> Template | Redirect:
        return await self._act(visitor, order_id, "urge", "orders.urged")

    @post("/{order_id:str}/cancel")
    async def cancel(self, visitor: Visitor, order_id: str) -> Template | Redirect:
        return await self._act(visitor, order_id, "cancel", "orders.cancelled")

    async def _act(self, visitor: Visitor, order_id: str, action: str, done: str) -> Template | Redirect:
        visitor.user()
        try:
            await visitor.api("POST", f"orders/{order_id}/{action}")
        except ApiProblem as problem:
            if problem.status != 409:
                raise
            parts = await live_parts(visitor, order_id)
            return page(visitor, "pages/order.html", status=409, notice=problem.detail, notice_kind="error", **parts)
        parts = await live_parts(visitor, order_id)
        return page(visitor, "pages/order.html", notice=visitor.t(done), notice_kind="ok", **parts)
