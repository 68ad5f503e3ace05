"""Agents and sub-sites (代理 / 分站) in the storefront.

- `/s/{slug}/`: a sub-site's home (its title, its products at its prices). The visitor
  middleware keeps the site in a cookie from here on, so every storefront page (product,
  checkout, sign-up, orders) asks the API with `X-Kameng-Site`: the same pages, the site's prices,
  and a sign-up there binds the buyer to it. `/s/{slug}/{page}` enters the site on any page;
  `/leave-site` goes back to the main site.
- `/agent`: the agent's workspace: apply (a buyer), then the site's settings (slug, title, markup,
  own prices per SKU in yuan), the commissions with the balances, and withdrawals (提现).
"""

from __future__ import annotations

import secrets
from typing import Any

from litestar import Controller, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template

from services.web import i18n
from services.web.client import ApiProblem
from services.web.forms import Form
from services.web.pages.common import FormData, text
from services.web.render import page
from services.web.session import PageNotFound
from services.web.visitor import SITE_COOKIE, Visitor
from shared.money import MoneyError, format_yuan, parse_yuan

i18n.add(
    {
        "site.badge": ("分站", "Sub-site"),
        "site.leave": ("返回主站", "Back to the main shop"),
        "site.signup": ("在本站注册", "Sign up on this shop"),
        "site.products": ("商品与价格", "Products and prices"),
        "agent.title": ("代理中心", "Agent centre"),
        "agent.apply": ("申请成为代理", "Apply to become an agent"),
        "agent.apply_hint": (
            "代理可开设自己的分站、自定价格并赚取佣金。",
            "Agents run their own sub-site, set their prices and earn commissions.",
        ),
        "agent.note": ("申请说明", "Why you apply"),
        "agent.applied": ("申请已提交，请等待审核。", "Application sent; staff will review it."),
        "agent.site": ("我的分站", "My sub-site"),
        "agent.slug": ("分站地址（slug）", "Address (slug)"),
        "agent.site_title": ("分站名称", "Shop title"),
        "agent.markup": ("加价比例 %", "Markup %"),
        "agent.own_prices": ("单品价格（元，留空按加价）", "Own prices (yuan; empty = markup)"),
        "agent.cost": ("我的成本", "My cost"),
        "agent.price": ("售价", "Price"),
        "agent.save": ("保存分站", "Save the shop"),
        "agent.saved": ("分站已保存。", "Shop saved."),
        "agent.visit": ("打开我的分站", "Open my shop"),
        "agent.commissions": ("佣金", "Commissions"),
        "agent.available": ("可提现", "Available"),
        "agent.pending": ("售后期内", "In the after-sales window"),
        "agent.withdrawing": ("提现中", "Being withdrawn"),
        "agent.paid": ("已打款", "Paid out"),
        "agent.withdraw": ("申请提现", "Withdraw"),
        "agent.amount": ("金额（元）", "Amount (yuan)"),
        "agent.withdraw_sent": ("提现申请已提交。", "Withdrawal requested."),
        "agent.withdrawals": ("提现记录", "Withdrawals"),
        "agent.orders": ("分站订单", "Shop orders"),
        "agent.order": ("订单", "Order"),
        "agent.status.pending": ("待审核/售后期", "Pending"),
        "agent.status.available": ("可提现", "Available"),
        "agent.status.reversed": ("已冲回（退款）", "Reversed (refund)"),
        "agent.status.paid": ("已打款", "Paid"),
        "agent.status.rejected": ("已驳回", "Rejected"),
        "agent.status.approved": ("已通过", "Approved"),
        "agent.bad_amount": ("请输入金额，如 12.50", "Type an amount such as 12.50"),
        "agent.bad_price": ("请输入价格，如 9.90", "Type a price such as 9.90"),
    }
)


def _price_fields(data: dict[str, Any]) -> dict[str, str]:
    return {k: text(data, k, 20) for k in data if k.startswith("price.")}


class SitePages(Controller):
    path = "/"

    @get("/s/{slug:str}")
    async def site_home(self, visitor: Visitor, slug: str) -> Template:
        try:
            site = await visitor.cached(f"site:{slug}", "GET", f"sites/{slug}")
        except ApiProblem as problem:
            if problem.status in (404, 422):
                raise PageNotFound from problem
            raise
        return page(visitor, "pages/site_home.html", site=site)

    @get("/s/{slug:str}/{rest:path}")
    async def site_page(self, slug: str, rest: str) -> Redirect:
        """Any storefront page entered through the sub-site: the middleware has kept the site,
        the page itself is the main site's (same pages, the site's prices)."""
        target = "/" + rest.strip("/")
        return Redirect(f"/s/{slug}" if target == "/" else target, status_code=303)

    @get("/leave-site")
    async def leave(self) -> Response[Any]:
        gone = Cookie(key=SITE_COOKIE, value="", path="/", max_age=0, samesite="lax")
        return Redirect("/", status_code=303, cookies=[gone])


class AgentPages(Controller):
    path = "/agent"

    async def _workspace(self, visitor: Visitor, **context: Any) -> Template:
        me = await visitor.api("GET", "me")
        is_agent = "agent" in me.get("roles", [])
        site = commissions = withdrawals = orders = None
        if is_agent:
            try:
                site = await visitor.api("GET", "agent/site")
            except ApiProblem as problem:
                if problem.status != 404:
                    raise
            commissions = await visitor.api("GET", "agent/commissions", params={"page_size": 50})
            withdrawals = await visitor.api("GET", "agent/withdrawals", params={"page_size": 20})
            orders = await visitor.api("GET", "agent/orders", params={"page_size": 20})
        site_form = context.pop("site_form", None) or Form(
            values={
                "slug": (site or {}).get("slug", ""),
                "title": (site or {}).get("title", ""),
                "markup_percent": str((site or {}).get("markup_percent", 20)),
                **{f"price.{k}": format_yuan(v) for k, v in ((site or {}).get("prices") or {}).items()},
            }
        )
        return page(
            visitor,
            "pages/agent.html",
            status=context.pop("status", 200),
            is_agent=is_agent,
            site=site,
            commissions=commissions,
            withdrawals=withdrawals,
            orders=orders,
            site_form=site_form,
            apply_form=context.pop("apply_form", None) or Form(),
            withdraw_form=context.pop("withdraw_form", None) or Form(),
            **context,
        )

    @get("/")
    async def workspace(self, visitor: Visitor) -> Template:
        visitor.user()
        return await self._workspace(visitor)

    async def _done(self, visitor: Visitor, message: str) -> Redirect:
        session = visitor.user()
        session.flash = message
        await visitor.deps.sessions.save(session)
        return Redirect("/agent", status_code=303)

    @post("/apply")
    async def apply(self, visitor: Visitor, data: FormData) -> Template | Redirect:
        visitor.user()
        form = Form(values={"note": text(data, "note", 1000)})
        try:
            await visitor.api("POST", "agent/application", json={"note": form.values["note"]})
        except ApiProblem as problem:
            form.fail(problem)
            return await self._workspace(visitor, apply_form=form, status=form.status)
        return await self._done(visitor, visitor.t("agent.applied"))

    @post("/site")
    async def save_site(self, visitor: Visitor, data: FormData) -> Template | Redirect:
        visitor.user()
        form = Form(
            values={
                "slug": text(data, "slug", 64),
                "title": text(data, "title", 60),
                "markup_percent": text(data, "markup_percent", 6),
                **_price_fields(data),
            }
        )
        prices: dict[str, int] = {}
        for name, raw in _price_fields(data).items():
            if raw:
                try:
                    prices[name.split(".", 1)[1]] = parse_yuan(raw)
                except MoneyError:
                    form.add(name, visitor.t("agent.bad_price"))
        try:
            markup = int(form.values["markup_percent"] or 0)
        except ValueError:
            form.add("markup_percent", visitor.t("agent.bad_price"))
            markup = 0
        if form.ok:
            body = {"slug": form.values["slug"], "title": form.values["title"], "markup_percent": markup}
            try:
                await visitor.api("PUT", "agent/site", json={**body, "prices": prices})
            except ApiProblem as problem:
                form.fail(problem, rename={f"prices.{k}": f"price.{k}" for k in prices})
            else:
                return await self._done(visitor, visitor.t("agent.saved"))
        return await self._workspace(visitor, site_form=form, status=form.status)

    @post("/withdraw")
    async def withdraw(self, visitor: Visitor, data: FormData) -> Template | Redirect:
        visitor.user()
        form = Form(values={"amount": text(data, "amount", 20)})
        try:
            amount = parse_yuan(form.values["amount"])
        except MoneyError:
            form.add("amount", visitor.t("agent.bad_amount"))
        else:
            try:
                await visitor.api(
                    "POST",
                    "agent/withdrawals",
                    json={"amount_cents": amount},
                    headers={"Idempotency-Key": "web-" + secrets.token_urlsafe(16)},
                )
            except ApiProblem as problem:
                form.fail(problem, rename={"amount_cents": "amount"})
            else:
                return await self._done(visitor, visitor.t("agent.withdraw_sent"))
        return await self._workspace(visitor, withdraw_form=form, status=form.status)
