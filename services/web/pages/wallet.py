"""Wallet (资产概览): balance, points, coupons and the ledger with paging; top-ups through the
payment provider's pay_url, followed live until they land (and back to the checkout that needed
them); the 消费分析报告 as server-rendered SVG charts."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, get, post
from litestar.params import Parameter
from litestar.response import Redirect, Template

from services.web.charts import bar_chart
from services.web.client import ApiProblem
from services.web.forms import Form
from services.web.pages.common import FormData, local_target, text
from services.web.pages.storefront import catalog_tree
from services.web.render import page
from services.web.visitor import Visitor
from shared.money import MoneyError, parse_yuan

CHANNELS = ("alipay", "wechat")


class WalletPages(Controller):
    path = "/"

    @get("/wallet")
    async def wallet(self, visitor: Visitor, page_no: int = Parameter(query="page", default=1)) -> Template:
        visitor.user()
        overview = await visitor.api("GET", "wallet")
        ledger = await visitor.api(
            "GET", "wallet/ledger", params={"page": max(1, min(page_no, 100_000)), "page_size": 20}
        )
        return page(visitor, "pages/wallet.html", wallet=overview, ledger=ledger)

    @get("/wallet/topup")
    async def topup_form(self, visitor: Visitor, amount: str = "", return_to: str = "") -> Template:
        visitor.user()
        form = Form(
            values={"amount": amount[:12] or "100", "channel": "alipay", "return_to": local_target(return_to, "")}
        )
        return page(visitor, "pages/topup.html", form=form, channels=CHANNELS)

    @post("/wallet/topup")
    async def topup(self, visitor: Visitor, data: FormData) -> Template | Redirect:
        visitor.user()
        form = Form(
            values={
                "amount": text(data, "amount", 12),
                "channel": text(data, "channel", 20),
                "return_to": local_target(text(data, "return_to"), ""),
            }
        )
        amount_cents = 0
        try:
            amount_cents = parse_yuan(form.values["amount"])
        except MoneyError:
            form.add("amount", visitor.t("wallet.amount_invalid"))
        if form.values["channel"] not in CHANNELS:
            form.add("channel", visitor.t("wallet.channel_invalid"))
        if form.ok:
            try:
                created = await visitor.api(
                    "POST",
                    "wallet/topups",
                    json={"amount_cents": amount_cents, "channel": form.values["channel"]},
                    headers={"Idempotency-Key": "web-" + secrets.token_urlsafe(16)},
                )
            except ApiProblem as problem:
                form.fail(problem, rename={"amount_cents": "amount"})
            else:
                back = "?" + urlencode({"return_to": form.values["return_to"]}) if form.values["return_to"] else ""
                return Redirect(f"/wallet/topups/{created['topup_id']}{back}", status_code=303)
        return page(visitor, "pages/topup.html", status=form.status, form=form, channels=CHANNELS)

    @get("/wallet/topups/{topup_id:str}")
    async def topup_status(self, visitor: Visitor, topup_id: str, return_to: str = "") -> Template:
        visitor.user()
        topup = await visitor.api("GET", f"wallet/topups/{topup_id}")
        template = "partials/topup_status.html" if visitor.htmx else "pages/topup_status.html"
        return page(visitor, template, topup=topup, return_to=local_target(return_to, ""))

    @get("/report")
    async def report(self, visitor: Visitor, months: int = 6) -> Template:
        visitor.user()
        months = months if months in (3, 6, 12) else 6
        report = await visitor.api("GET", "wallet/report", params={"months": months})
        tree = await catalog_tree(visitor)
        names = {
            c["category_id"]: f"{s['name']} · {c['name']}"
            for s in tree.get("scenarios", [])
            for c in s.get("categories", [])
        }
        monthly = bar_chart(
            [(m["month"][2:], int(m["net_spent_cents"])) for m in report.get("months", [])],
            title=visitor.t("report.by_month"),
        )
        categories: list[dict[str, Any]] = report.get("by_category", [])
        by_category = bar_chart(
            [(names.get(c["category_id"], c["category_id"] or "—"), int(c["net_spent_cents"])) for c in categories[:8]],
            title=visitor.t("report.by_category"),
            horizontal=True,
        )
        return page(
            visitor,
            "pages/report.html",
            report=report,
            months=months,
            monthly=monthly,
            by_category=by_category,
            names=names,
        )
