"""The order service's HTTP request and response bodies, and how documents become answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar.datastructures import UploadFile
from litestar.openapi.spec import OpenAPIType, Schema

from services.order.domain import EVERY, Quote, eta_at
from services.order.sheets import MAX_ROWS
from shared.contracts.catalog import SkuChanged
from shared.limits import AnyQuantity, Quantity, RecipientInput
from shared.strict_bodies import documented


class OrderRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    sku_id: str
    quantity: AnyQuantity = 1
    recipient: RecipientInput = {}
    coupon_code: str | None = None
    pay_with: Literal["balance", "provider"] = "balance"
    channel: Literal["alipay", "wechat"] | None = None
    """With `pay_with: provider`: where the buyer pays (the answer's pay_url)."""


class QuoteView(msgspec.Struct, kw_only=True):
    sku_id: str
    quantity: int
    unit_price_cents: int
    subtotal_cents: int
    discount_cents: int
    total_cents: int
    recipient: dict[str, str]
    recipient_notes: dict[str, str]
    warnings: list[str]
    eta_seconds: int | None = None
    """预计到账时间 as staff set it."""
    eta_observed_seconds: int | None = None
    """p90 of this SKU's recent real deliveries (null until there are a few)."""


class HistoryEntry(msgspec.Struct, kw_only=True):
    status: str
    at: datetime
    reason: str | None = None


class OrderView(msgspec.Struct, kw_only=True):
    order_id: str
    status: str
    sku_id: str
    sku_name: str
    product_name: str
    quantity: int
    unit_price_cents: int
    discount_cents: int
    total_cents: int
    recipient: dict[str, str]
    delivery_mode: str
    created_at: datetime
    expires_at: datetime | None = None
    paid_at: datetime | None = None
    delivered_at: datetime | None = None
    urged_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    coupon_code: str | None = None
    pay_with: str = "balance"
    channel: str | None = None
    pay_url: str | None = None
    revealed_at: datetime | None = None
    """When the owner first saw the delivered keys; null while 待使用."""
    eta_seconds: int | None = None
    eta_at: datetime | None = None
    """预计到账时间: when delivery is expected (after payment); 催单 opens once it has passed."""
    history: list[HistoryEntry] = []
    site: str | None = None
    """The sub-site (slug) the order was placed on; None on the main site."""


class StaffOrderView(OrderView, kw_only=True):
    """An order as staff see it in the console: whose it is, and the trace of its saga."""

    user_id: str
    trace_id: str | None = None
    """W3C trace id of the request that placed it: the console links it to the trace viewer."""
    batch_id: str | None = None


class TemplateRow(msgspec.Struct, kw_only=True):
    sku_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    quantity: Quantity = 1
    recipient: RecipientInput = {}


@dataclass
class BatchUpload:
    file: UploadFile
    save_as_template: str | None = None
    coupon_code: str | None = None
    """One coupon for the batch: its discount goes to the first row it applies to."""


class BatchView(msgspec.Struct, kw_only=True):
    batch_id: str
    status: str
    accepted: int
    rejected: list[dict[str, Any]]
    order_ids: list[str]
    total_cents: int
    decline_reason: str | None = None


class TemplateIn(msgspec.Struct, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    rows: Annotated[list[TemplateRow], msgspec.Meta(min_length=1, max_length=MAX_ROWS)]


class TemplateView(msgspec.Struct, kw_only=True):
    template_id: str
    name: str
    rows: list[TemplateRow]
    created_at: datetime


def quote_view(sku: SkuChanged, q: Quote, observed_eta: int | None = None) -> QuoteView:
    return QuoteView(
        sku_id=sku.sku_id,
        quantity=q.quantity,
        unit_price_cents=q.unit_price_cents,
        subtotal_cents=q.subtotal_cents,
        discount_cents=q.discount_cents,
        total_cents=q.total_cents,
        recipient=q.recipient,
        recipient_notes=q.notes,
        warnings=q.warnings,
        eta_seconds=sku.eta_seconds,
        eta_observed_seconds=observed_eta,
    )


def placed_view(order: dict[str, Any]) -> dict[str, Any]:
    """The 201 body of POST /orders."""
    return {
        "order_id": order["_id"],
        "status": order["status"],
        "total_cents": order["total_cents"],
        "unit_price_cents": order["unit_price_cents"],
        "discount_cents": order["discount_cents"],
        "quantity": order["quantity"],
        "sku_id": order["sku_id"],
        "expires_at": order["expires_at"],
        # A provider order's next step: pay there (null when the wallet has not answered yet;
        # GET /orders/{id} shows it once it has).
        **({"pay_url": order.get("pay_url")} if order.get("pay_with") == "provider" else {}),
    }


def order_view(doc: dict[str, Any]) -> OrderView:
    return OrderView(
        order_id=doc["_id"],
        status=doc["status"],
        sku_id=doc["sku_id"],
        sku_name=doc.get("sku_name", ""),
        product_name=doc.get("product_name", ""),
        quantity=doc["quantity"],
        unit_price_cents=doc["unit_price_cents"],
        discount_cents=doc.get("discount_cents", 0),
        total_cents=doc["total_cents"],
        recipient=doc.get("recipient", {}),
        delivery_mode=doc["delivery_mode"],
        created_at=doc["created_at"],
        expires_at=doc.get("expires_at"),
        paid_at=doc.get("paid_at"),
        delivered_at=doc.get("delivered_at"),
        urged_at=doc.get("urged_at"),
        cancel_requested_at=doc.get("cancel_requested_at"),
        coupon_code=doc.get("coupon_code"),
        pay_with=doc.get("pay_with") or "balance",
        channel=doc.get("channel"),
        pay_url=doc.get("pay_url") if doc["status"] == "pending_payment" else None,
        revealed_at=doc.get("revealed_at"),
        eta_seconds=doc.get("eta_seconds"),
        eta_at=eta_at(doc),
        history=[HistoryEntry(status=h["status"], at=h["at"], reason=h.get("reason")) for h in doc.get("history", [])],
        site=doc.get("site"),
    )


class AgentOrderView(msgspec.Struct, kw_only=True):
    """An order of the agent's sub-site as the agent sees it: what sold and the commission,
    never the buyer's recipient details or card keys."""

    order_id: str
    status: str
    site: str
    sku_id: str
    sku_name: str
    product_name: str
    quantity: int
    unit_price_cents: int
    total_cents: int
    agent_cost_cents: int
    commission_cents: int
    created_at: datetime
    delivered_at: datetime | None = None


def agent_order_view(doc: dict[str, Any]) -> AgentOrderView:
    return AgentOrderView(
        order_id=doc["_id"],
        status=doc["status"],
        site=doc["site"],
        sku_id=doc["sku_id"],
        sku_name=doc.get("sku_name", ""),
        product_name=doc.get("product_name", ""),
        quantity=doc["quantity"],
        unit_price_cents=doc["unit_price_cents"],
        total_cents=doc["total_cents"],
        agent_cost_cents=int(doc.get("agent_cost_cents", 0)),
        commission_cents=int(doc.get("commission_cents", 0)),
        created_at=doc["created_at"],
        delivered_at=doc.get("delivered_at"),
    )


def staff_order_view(doc: dict[str, Any]) -> StaffOrderView:
    view = order_view(doc)
    return StaffOrderView(
        **msgspec.structs.asdict(view),
        user_id=doc["user_id"],
        trace_id=doc.get("trace_id"),
        batch_id=doc.get("batch_id"),
    )


def batch_view(doc: dict[str, Any]) -> BatchView:
    return BatchView(
        batch_id=doc["_id"],
        status=doc["status"],
        accepted=len(doc["order_ids"]),
        rejected=doc["rejected"],
        order_ids=doc["order_ids"],
        total_cents=doc["total_cents"],
        decline_reason=doc.get("decline_reason"),
    )


def template_view(doc: dict[str, Any]) -> TemplateView:
    return TemplateView(
        template_id=doc["_id"],
        name=doc["name"],
        created_at=doc["created_at"],
        rows=[msgspec.convert(r, TemplateRow) for r in doc["rows"]],
    )


# -- scheduled orders (自动充值) -------------------------------------------------------------


class SubscriptionIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    sku_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    quantity: AnyQuantity = 1
    recipient: dict[str, str] = {}
    every: Annotated[str, documented(enum=list(EVERY))]
    """`month` or `week`."""
    day: AnyQuantity
    """Day of the month (1..31; a short month runs on its last day) or of the week (1..7, Monday 1)."""
    hour: Annotated[AnyQuantity, documented(minimum=0, maximum=23)] = 9
    """Hour of the day, 0..23, China Standard Time."""

    # `schedule_errors`' rule across `every` and `day`, stated in the document.
    __openapi_any_of__ = [
        Schema(
            properties={
                "every": Schema(const=every),
                "day": Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=last),
            }
        )
        for every, last in (("month", 31), ("week", 7))
    ]


class SubscriptionRun(msgspec.Struct, kw_only=True):
    run: int
    at: datetime
    outcome: str
    """`ok` (the order was paid) or `failed` (with `reason`, told to the owner)."""
    order_id: str | None = None
    reason: str | None = None
    detail: str = ""


class SubscriptionView(msgspec.Struct, kw_only=True):
    subscription_id: str
    status: str
    sku_id: str
    quantity: int
    recipient: dict[str, str]
    every: str
    day: int
    hour: int
    next_run_at: datetime
    created_at: datetime
    runs: list[SubscriptionRun]
    """The latest runs, oldest first."""
    failures: int


def subscription_view(doc: dict[str, Any]) -> SubscriptionView:
    return SubscriptionView(
        subscription_id=doc["_id"],
        status=doc["status"],
        sku_id=doc["sku_id"],
        quantity=doc["quantity"],
        recipient=doc["recipient"],
        every=doc["every"],
        day=doc["day"],
        hour=doc["hour"],
        next_run_at=doc["next_run_at"],
        created_at=doc["created_at"],
        runs=[msgspec.convert(r, SubscriptionRun) for r in doc.get("runs", [])],
        failures=doc.get("failures", 0),
    )
