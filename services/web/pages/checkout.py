"""Checkout: the order form (quantity, the SKU's recipient fields, coupon), the mandatory
信息预览 step (the API's quote: carrier, total, warnings, balance), then paying by balance.

The preview is kept server-side (Redis, with the session) and paying places exactly what was
previewed, with the preview's id as the Idempotency-Key: the pay button cannot be reached
without a preview, and a double click places one order."""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template

from services.web.client import ApiProblem
from services.web.forms import Form
from services.web.pages.common import FormData, local_target, text
from services.web.render import page
from services.web.session import PageNotFound
from services.web.visitor import Visitor

PREVIEW_TTL_SECONDS = 30 * 60


def _sku_of(product: dict[str, Any], sku_id: str) -> dict[str, Any]:
    for sku in product.get("skus", []):
        if sku.get("sku_id") == sku_id:
            return dict(sku)
    raise PageNotFound


def _values(data: dict[str, Any], sku: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "quantity": text(data, "quantity", 6) or "1",
        "coupon_code": text(data, "coupon_code", 64),
    }
    for f in sku.get("recipient_fields", []):
        values[f"recipient.{f['name']}"] = text(data, f"recipient.{f['name']}", 200)
    return values


def _body(sku_id: str, values: dict[str, Any], form: Form) -> dict[str, Any]:
    try:
        quantity = int(values["quantity"])
    except ValueError:
        quantity = 0
    if not 1 <= quantity <= 10_000:
        form.add("quantity", "1–10000")
    body: dict[str, Any] = {
        "sku_id": sku_id,
        "quantity": quantity,
        "recipient": {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("recipient.") and v},
    }
    if values.get("coupon_code"):
        body["coupon_code"] = values["coupon_code"]
    return body


def _again_url(sku_id: str, product_id: str, values: dict[str, Any]) -> str:
    """This checkout with what the buyer typed: where a top-up returns to."""
    return f"/checkout/{sku_id}?" + urlencode({"product": product_id, **{k: v for k, v in values.items() if v}})


class CheckoutPages(Controller):
    path = "/checkout"

    async def _product(self, visitor: Visitor, product_id: str) -> dict[str, Any]:
        product: dict[str, Any] = await visitor.api("GET", f"catalog/products/{product_id}")
        return product

    @get("/{sku_id:str}")
    async def form(self, visitor: Visitor, request: Request[Any, Any, Any], sku_id: str, product: str = "") -> Template:
        visitor.user()
        item = await self._product(visitor, product)
        sku = _sku_of(item, sku_id)
        # Values come back in the query when a top-up returns here.
        form = Form(values=_values(dict(request.query_params), sku))
        return page(visitor, "pages/checkout.html", product=item, sku=sku, form=form)

    @post("/{sku_id:str}/preview")
    async def preview(self, visitor: Visitor, sku_id: str, data: FormData) -> Template:
        session = visitor.user()
        product_id = text(data, "product", 64)
        item = await self._product(visitor, product_id)
        sku = _sku_of(item, sku_id)
        form = Form(values=_values(data, sku))
        body = _body(sku_id, form.values, form)
        if form.ok:
            try:
                quote = await visitor.api("POST", "orders/quote", json=body)
            except ApiProblem as problem:
                form.fail(problem, rename={"coupon": "coupon_code", "code": "coupon_code"})
            else:
                wallet = await visitor.api("GET", "wallet")
                preview_id = secrets.token_urlsafe(16)
                await visitor.deps.redis.set(
                    f"web:preview:{session.sid}:{preview_id}",
                    json.dumps({"body": body, "product_id": product_id, "values": form.values}),
                    ex=PREVIEW_TTL_SECONDS,
                )
                return page(
                    visitor,
                    "pages/preview.html",
                    product=item,
                    sku=sku,
                    quote=quote,
                    wallet=wallet,
                    preview_id=preview_id,
                    short=max(0, int(quote["total_cents"]) - int(wallet.get("balance_cents", 0))),
                    again=_again_url(sku_id, product_id, form.values),
                )
        return page(visitor, "pages/checkout.html", status=form.status, product=item, sku=sku, form=form)

    @post("/pay")
    async def pay(self, visitor: Visitor, data: FormData) -> Template | Redirect:
        session = visitor.user()
        preview_id = text(data, "preview_id", 64)
        raw = await visitor.deps.redis.get(f"web:preview:{session.sid}:{preview_id}") if preview_id else None
        if raw is None:
            # Expired or never previewed: back to the product, to go through 信息预览 again.
            return Redirect(local_target(text(data, "back"), "/orders"), status_code=303)
        saved = json.loads(raw)
        body = {**saved["body"], "pay_with": "balance"}
        try:
            placed = await visitor.api("POST", "orders", json=body, headers={"Idempotency-Key": f"web-{preview_id}"})
        except ApiProblem as problem:
            if problem.status not in (402, 409, 422):
                raise
            item = await self._product(visitor, saved["product_id"])
            sku = _sku_of(item, body["sku_id"])
            quote = await visitor.api("POST", "orders/quote", json=saved["body"])
            wallet = await visitor.api("GET", "wallet")
            return page(
                visitor,
                "pages/preview.html",
                status=problem.status,
                product=item,
                sku=sku,
                quote=quote,
                wallet=wallet,
                preview_id=preview_id,
                short=max(0, int(quote["total_cents"]) - int(wallet.get("balance_cents", 0))),
                again=_again_url(body["sku_id"], saved["product_id"], saved["values"]),
                problem=problem,
            )
        await visitor.deps.redis.delete(f"web:preview:{session.sid}:{preview_id}")
        return Redirect(f"/orders/{placed['order_id']}", status_code=303)
