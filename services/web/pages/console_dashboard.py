"""Console dashboard: the day at a glance, from what the public admin API offers.

The API has no aggregate endpoint (no admin order list, no delivery-latency figure, no Kafka
dead-letter count), so the dashboard counts from list endpoints with bounded paging and shows
"not offered by the API" for the rest (listed in docs/web.md). Each figure is fetched on its
own: one service being down blanks its card, not the page."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Controller, get
from litestar.response import Template

from services.web.client import ApiProblem
from services.web.pages.console_common import console
from services.web.visitor import Visitor

# Low-stock scan: products looked at per dashboard view (one public product call each, which
# carries every on-sale SKU's stock state). Enough for a small shop; the rest is reported.
LOW_STOCK_SCAN = 40
QUEUE_CAP = 200


async def _figure(load: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await load()
    except ApiProblem as problem:
        return {"error": problem.status}


class ConsoleDashboard(Controller):
    path = "/admin"

    @get("/")
    async def dashboard(self, visitor: Visitor) -> Template:
        visitor.staff()

        async def queue() -> Any:
            tasks = await visitor.api("GET", "admin/manual-tasks", params={"limit": QUEUE_CAP})
            return {
                "count": len(tasks),
                "capped": len(tasks) >= QUEUE_CAP,
                "urged": sum(1 for t in tasks if t.get("urged")),
            }

        async def tickets() -> Any:
            answer = await visitor.api("GET", "admin/tickets", params={"page_size": 100})
            items = answer.get("items", [])
            return {
                "count": answer.get("total", 0),
                "overdue": sum(1 for t in items if t.get("overdue")),
                "urged": sum(1 for t in items if t.get("urged")),
            }

        async def dead() -> Any:
            answer = await visitor.api("GET", "admin/webhook-deliveries", params={"status": "dead", "page_size": 1})
            return {"count": answer.get("total", 0)}

        async def topups() -> Any:
            answer = await visitor.api("GET", "admin/topups", params={"status": "pending", "channel": "bank"})
            return {"count": len(answer.get("items", []))}

        async def urges() -> Any:
            answer = await visitor.api("GET", "admin/urges")
            return {"count": answer.get("total", 0)}

        async def low_stock() -> Any:
            tree = await visitor.api("GET", "catalog/tree")
            products = [
                (p, c, s)
                for s in tree.get("scenarios", [])
                for c in s.get("categories", [])
                for p in c.get("products", [])
            ]
            scanned = products[:LOW_STOCK_SCAN]
            details = await asyncio.gather(
                *(visitor.api("GET", f"catalog/products/{p['product_id']}") for p, _, _ in scanned),
                return_exceptions=True,
            )
            rows = []
            for detail in details:
                if isinstance(detail, BaseException):
                    continue
                for sku in detail.get("skus", []):
                    if sku.get("stock") in ("low", "out_of_stock") and sku.get("delivery_mode") == "auto":
                        rows.append({"product": detail, "sku": sku})
            return {"rows": rows, "scanned": len(scanned), "total": len(products)}

        names = ("queue", "tickets", "dead", "topups", "urges", "low_stock")
        values = await asyncio.gather(*(_figure(f) for f in (queue, tickets, dead, topups, urges, low_stock)))
        figures = dict(zip(names, values, strict=True))
        return console(visitor, "dashboard.html", "dashboard", figures=figures)
