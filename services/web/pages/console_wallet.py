"""Console money pages: bank top-ups waiting for approval (approve with the bank reference,
reject with a reason; both audited by the wallet) and coupons (define, switch off/on, move the
expiry, grant to users)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Controller, get, post
from litestar.response import Redirect, Template

from services.web.client import ApiProblem
from services.web.forms import Form
from services.web.pages.common import FormData, text
from services.web.pages.console_common import checked, console, done, idempotency, int_field, yuan_field
from services.web.render import SHOWN_ZONE
from services.web.visitor import Visitor

TOPUP_STATUSES = ("pending", "succeeded", "failed")
CHANNELS = ("bank", "alipay", "wechat")
COUPON_KINDS = ("fixed", "percent")
COUPON_RENAME = {
    "amount_off_cents": "amount_off",
    "min_spend_cents": "min_spend",
    "max_discount_cents": "max_discount",
    "percent_off_bp": "percent_off",
}
COUPON_FIELDS = {
    "code",
    "kind",
    "amount_off",
    "percent_off",
    "max_discount",
    "min_spend",
    "expires_at",
    "per_user_limit",
    "description",
    "sku_ids",
    "category_ids",
}


def _local_time(raw: str) -> datetime | None:
    """A `datetime-local` value, meant in China time (what staff see everywhere), as UTC."""
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=SHOWN_ZONE)
    return value.astimezone(UTC)


class ConsoleTopups(Controller):
    path = "/admin/topups"

    @get("/")
    async def topups(self, visitor: Visitor, status: str = "pending", channel: str = "bank") -> Template:
        visitor.staff()
        return await self._page(visitor, status=status, channel=channel)

    async def _page(
        self,
        visitor: Visitor,
        *,
        status: str = "pending",
        channel: str = "bank",
        failed: tuple[str, Form] | None = None,
        code: int = 200,
    ) -> Template:
        status = status if status in TOPUP_STATUSES else "pending"
        channel = channel if channel in CHANNELS else "bank"
        answer = await visitor.api("GET", "admin/topups", params={"status": status, "channel": channel})
        return console(
            visitor,
            "topups.html",
            "topups",
            status=code,
            topups=answer.get("items", []),
            topup_status=status,
            channel=channel,
            statuses=TOPUP_STATUSES,
            channels=CHANNELS,
            failed=failed,
        )

    @post("/{topup_id:str}/{decision:str}")
    async def decide(self, visitor: Visitor, topup_id: str, decision: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        form = Form(values={"note": text(data, "note", 500)})
        if decision not in ("approve", "reject"):
            form.banner = visitor.t("console.topups.bad_decision")
        elif not form.values["note"]:
            form.add("note", visitor.t("console.topups.note_needed"))
        if form.ok:
            try:
                await visitor.api("POST", f"admin/topups/{topup_id}/{decision}", json=form.values)
            except ApiProblem as problem:
                if problem.status == 404:
                    raise
                form.fail(problem)
            else:
                return await done(visitor, "/admin/topups", visitor.t(f"console.topups.{decision}d"))
        return await self._page(visitor, failed=(topup_id, form), code=form.status if form.status >= 400 else 422)


class ConsoleCoupons(Controller):
    path = "/admin/coupons"

    @get("/")
    async def coupons(self, visitor: Visitor) -> Template:
        visitor.staff()
        return await self._page(visitor)

    async def _page(self, visitor: Visitor, *, form: Form | None = None, code: int = 200, **extra: Any) -> Template:
        answer = await visitor.api("GET", "admin/coupons")
        default_expiry = (datetime.now(SHOWN_ZONE) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
        return console(
            visitor,
            "coupons.html",
            "coupons",
            status=code,
            coupons=answer.get("items", []),
            form=form or Form(values={"kind": "fixed", "per_user_limit": "1", "expires_at": default_expiry}),
            kinds=COUPON_KINDS,
            **extra,
        )

    @post("/")
    async def create(self, visitor: Visitor, data: FormData) -> Template | Redirect:
        visitor.staff()
        t = visitor.t
        form = Form(values={name: text(data, name, 2000) for name in COUPON_FIELDS})
        form.values["first_order_only"] = checked(data, "first_order_only")
        form.values["grant_on_signup"] = checked(data, "grant_on_signup")
        body: dict[str, Any] = {
            "kind": form.values["kind"],
            "description": form.values["description"],
            "first_order_only": form.values["first_order_only"],
            "grant_on_signup": form.values["grant_on_signup"],
            "sku_ids": [s.strip() for s in form.values["sku_ids"].split(",") if s.strip()],
            "category_ids": [s.strip() for s in form.values["category_ids"].split(",") if s.strip()],
        }
        if form.values["code"]:
            body["code"] = form.values["code"]
        if form.values["kind"] not in COUPON_KINDS:
            form.add("kind", t("console.coupons.kind_invalid"))
        for name, api in (
            ("amount_off", "amount_off_cents"),
            ("min_spend", "min_spend_cents"),
            ("max_discount", "max_discount_cents"),
        ):
            cents = yuan_field(form, name, t("console.money_invalid"), required=False)
            if cents is not None:
                body[api] = cents
        percent = str(form.values["percent_off"]).strip()
        if percent:
            try:
                body["percent_off_bp"] = round(float(percent) * 100)
            except ValueError:
                form.add("percent_off", t("console.number_invalid"))
        limit = int_field(form, "per_user_limit", t("console.number_invalid"), low=1)
        if limit is not None:
            body["per_user_limit"] = limit
        expires = _local_time(form.values["expires_at"])
        if expires is None:
            form.add("expires_at", t("console.coupons.expiry_invalid"))
        else:
            body["expires_at"] = expires.isoformat()
        if form.ok:
            try:
                created = await visitor.api("POST", "admin/coupons", json=body, headers=idempotency())
            except ApiProblem as problem:
                form.fail(problem, rename=COUPON_RENAME, known=COUPON_FIELDS)
            else:
                return await done(visitor, "/admin/coupons", t("console.coupons.created", code=created["code"]))
        return await self._page(visitor, form=form, code=form.status)

    @post("/{code:str}/active")
    async def switch(self, visitor: Visitor, code: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        active = checked(data, "active")
        try:
            await visitor.api("PATCH", f"admin/coupons/{code}", json={"active": active})
        except ApiProblem as problem:
            if problem.status == 404:
                raise
            banner = Form()
            banner.fail(problem, known=set())
            return await self._page(visitor, code=banner.status, row=(code, banner))
        return await done(visitor, "/admin/coupons", visitor.t("console.saved"))

    @post("/{code:str}/grants")
    async def grant(self, visitor: Visitor, code: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        form = Form(values={"user_ids": text(data, "user_ids", 50_000), "quantity": text(data, "quantity", 5)})
        users = [u.strip() for u in form.values["user_ids"].replace(",", "\n").splitlines() if u.strip()]
        quantity = int_field(form, "quantity", visitor.t("console.number_invalid"), low=1) or 1
        if not users:
            form.add("user_ids", visitor.t("common.required"))
        result = None
        if form.ok:
            try:
                result = await visitor.api(
                    "POST", f"admin/coupons/{code}/grants", json={"user_ids": users, "quantity": quantity}
                )
            except ApiProblem as problem:
                if problem.status == 404:
                    raise
                form.fail(problem)
        return await self._page(visitor, code=form.status, row=(code, form), granted=result)
