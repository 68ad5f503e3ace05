"""Console orders: every buyer's orders (filter by group, buyer or SKU; an order id opens it), one
order with its history, its buyer and a link to its trace: the whole saga across the services in
the trace viewer that TRACE_VIEWER_URL names (Jaeger in compose and k8s, deploy/traceview.py in
`make dev`)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.response import Redirect, Template

from services.web.client import ApiProblem
from services.web.pages.console_common import console, page_no
from services.web.visitor import Visitor

GROUPS = ("all", "pending", "awaiting_delivery", "completed", "after_sales", "closed")


def _clean_id(raw: str) -> str:
    return "".join(c for c in raw.strip() if c.isalnum() or c in "-_")[:64]


def trace_link(template: str | None, trace_id: str | None) -> str | None:
    """The viewer's address of one trace, or None when no viewer is configured or the order
    predates trace ids."""
    if not template or not trace_id:
        return None
    return template.replace("{trace_id}", trace_id)


class ConsoleOrders(Controller):
    path = "/admin/orders"

    @get("/")
    async def orders(
        self, visitor: Visitor, group: str = "all", user_id: str = "", sku_id: str = "", q: str = "", page: str = "1"
    ) -> Template | Redirect:
        visitor.staff()
        wanted = _clean_id(q)
        if wanted:  # an order id typed into the search box opens that order
            return Redirect(f"/admin/orders/{wanted}", status_code=303)
        group = group if group in GROUPS else "all"
        params: dict[str, Any] = {"page": page_no(page), "page_size": 50}
        if group != "all":
            params["group"] = group
        filters = {"user_id": _clean_id(user_id), "sku_id": _clean_id(sku_id)}
        params.update({k: v for k, v in filters.items() if v})
        answer = await visitor.api("GET", "admin/orders", params=params)
        query = "&".join(f"{k}={v}" for k, v in {"group": group, **filters}.items() if v)
        return console(
            visitor,
            "orders.html",
            "orders",
            orders=answer.get("items", []),
            paging=answer,
            base=f"/admin/orders?{query}",
            group=group,
            groups=GROUPS,
            filters=filters,
        )

    @get("/{order_id:str}")
    async def order(self, visitor: Visitor, order_id: str) -> Template:
        visitor.staff()
        order: dict[str, Any] | None = None
        code = 200
        try:
            order = await visitor.api("GET", f"admin/orders/{_clean_id(order_id)}")
        except ApiProblem as problem:
            if problem.status != 404:
                raise
            code = 404
        template = visitor.deps.settings.trace_viewer_url
        return console(
            visitor,
            "order.html",
            "orders",
            status=code,
            order=order,
            order_id=order_id,
            trace_url=trace_link(template, order.get("trace_id")) if order else None,
        )
