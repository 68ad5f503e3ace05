"""The order service's HTTP API: quote (信息预览), place, the order center, cancel and urge,
batch orders and templates. Thin controllers: parse the request, call one use case, shape the
answer (`schemas.py`)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, delete, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody, Parameter

from services.order.deps import OrderDeps
from services.order.domain import GROUPS, STATUS_LIST_PATTERN
from services.order.schemas import (
    AgentOrderView,
    BatchUpload,
    BatchView,
    OrderRequest,
    OrderView,
    QuoteView,
    StaffOrderView,
    SubscriptionIn,
    SubscriptionView,
    TemplateIn,
    TemplateView,
    agent_order_view,
    batch_view,
    order_view,
    placed_view,
    quote_view,
    staff_order_view,
    subscription_view,
    template_view,
)
from services.order.sheets import SheetError, read_sheet
from services.order.usecases import batches, eta, orders, placing, sites, subscriptions
from shared.auth import AGENT, STAFF, Caller
from shared.errors import validation_problem
from shared.idempotency import IdempotencyHeader, idempotency_key
from shared.paging import Page, Paging

SiteHeader = Annotated[str | None, Parameter(header="X-Kameng-Site", required=False)]
"""The agent's sub-site the order is placed on (`shared.sites.SITE_HEADER`): its price, its commission."""
# The order-center filters, stated in the document; `status_filter` checks them with its own words.
StatusFilter = Annotated[
    str | None,
    Parameter(description="Statuses, comma-separated", schema_extra={"pattern": STATUS_LIST_PATTERN}),
]
GroupFilter = Annotated[str | None, Parameter(schema_extra={"enum": list(GROUPS)})]


class OrderController(Controller):
    path = "/api/v1/orders"
    tags = ["orders"]

    @post("/quote", status_code=200, summary="Price an order and check it before paying (信息预览)")
    async def quote(
        self, deps: OrderDeps, caller: Caller, data: JSONBody[OrderRequest], site: SiteHeader = None
    ) -> QuoteView:
        sku, q = await placing.quote_order(deps, caller, data, site)
        return quote_view(sku, q, await eta.observed(deps, sku.sku_id))

    @post(
        "/",
        summary="Place an order: pay with the balance, or through the provider (pay_with: provider)",
        description="409 out-of-stock when stock is short; 402 insufficient-balance when the balance is; "
        "409 coupon-unavailable when another order took the coupon. With pay_with provider and a channel "
        "the answer is 201 pending_payment with pay_url. Send Idempotency-Key to make retries safe.",
    )
    async def place(
        self,
        deps: OrderDeps,
        caller: Caller,
        data: JSONBody[OrderRequest],
        key: IdempotencyHeader = None,
        site: SiteHeader = None,
    ) -> dict[str, Any]:
        return placed_view(await placing.place_order(deps, caller, data, idempotency_key(key), site))

    @get("/", summary="My orders (订单中心), newest first")
    async def list_orders(
        self,
        deps: OrderDeps,
        caller: Caller,
        paging: Paging,
        status: StatusFilter = None,
        group: GroupFilter = None,
    ) -> Page[OrderView]:
        docs, total = await orders.list_orders(deps, caller.user_id, status, group, paging)
        return paging.of([order_view(d) for d in docs], total)

    @get("/{order_id:str}", summary="One of my orders, with its history")
    async def get_order(self, deps: OrderDeps, caller: Caller, order_id: str) -> OrderView:
        return order_view(await orders.get_order(deps, caller.user_id, order_id))

    @post("/{order_id:str}/cancel", status_code=200, summary="Cancel within the cancel window, before delivery")
    async def cancel_order(self, deps: OrderDeps, caller: Caller, order_id: str) -> dict[str, str]:
        outcome = await orders.cancel_order(deps, caller.user_id, order_id)
        return {"order_id": order_id, "result": outcome}

    @post("/{order_id:str}/urge", status_code=200, summary="Ask to hurry a late order (催单)")
    async def urge(self, deps: OrderDeps, caller: Caller, order_id: str) -> dict[str, Any]:
        urged, at = await orders.urge_order(deps, caller.user_id, order_id)
        return {"order_id": order_id, "urged": urged, "urged_at": at}


class BatchController(Controller):
    path = "/api/v1/orders"
    tags = ["batch orders"]

    @post(
        "/batch",
        summary="Order from a CSV or XLSX sheet (批量下单), paid in one payment",
        description="Columns: sku_id, quantity, and one per recipient field (e.g. mobile).",
    )
    async def upload(
        self,
        deps: OrderDeps,
        caller: Caller,
        data: Annotated[BatchUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
        key: IdempotencyHeader = None,
    ) -> BatchView:
        try:
            rows, rejected = read_sheet(data.file.filename or "", await data.file.read())
        except SheetError as exc:
            raise validation_problem([{"field": "file", "message": str(exc)}], str(exc)) from exc
        batch = await batches.order_sheet(
            deps,
            caller,
            rows,
            rejected,
            save_as_template=data.save_as_template,
            idempotency_key=idempotency_key(key),
            coupon_code=data.coupon_code or None,
        )
        return batch_view(batch)

    @get("/batches/{batch_id:str}", summary="A batch and what became of its rows")
    async def get_batch(self, deps: OrderDeps, caller: Caller, batch_id: str) -> BatchView:
        return batch_view(await batches.get_batch(deps, caller.user_id, batch_id))

    @post("/templates", summary="Save an order template (模板)")
    async def create_template(self, deps: OrderDeps, caller: Caller, data: JSONBody[TemplateIn]) -> TemplateView:
        return template_view(await batches.save_template(deps, caller, data.name, data.rows))

    @get("/templates", summary="My saved templates")
    async def list_templates(self, deps: OrderDeps, caller: Caller) -> list[TemplateView]:
        return [template_view(d) for d in await batches.list_templates(deps, caller.user_id)]

    @delete("/templates/{template_id:str}", summary="Delete a template")
    async def delete_template(self, deps: OrderDeps, caller: Caller, template_id: str) -> None:
        await batches.remove_template(deps, caller.user_id, template_id)

    @post("/templates/{template_id:str}/run", summary="Order a template's rows again, as one batch")
    async def run_template(
        self, deps: OrderDeps, caller: Caller, template_id: str, key: IdempotencyHeader = None
    ) -> BatchView:
        return batch_view(await batches.run_template(deps, caller, template_id, idempotency_key(key)))


class StaffOrderController(Controller):
    """The console's view of every buyer's orders (read-only: staff act on an order through the
    queues and tickets that own each step)."""

    path = "/api/v1/admin/orders"
    tags = ["orders (staff)"]
    guards = [STAFF]

    @get("/", summary="Every buyer's orders, newest first (filter by status, group, buyer, SKU)")
    async def list_orders(
        self,
        deps: OrderDeps,
        paging: Paging,
        status: StatusFilter = None,
        group: GroupFilter = None,
        user_id: Annotated[str | None, Parameter(max_length=64)] = None,
        sku_id: Annotated[str | None, Parameter(max_length=64)] = None,
    ) -> Page[StaffOrderView]:
        docs, total = await orders.staff_list_orders(
            deps, paging, status=status, group=group, user_id=user_id, sku_id=sku_id
        )
        return paging.of([staff_order_view(d) for d in docs], total)

    @get("/{order_id:str}", summary="One order with its buyer, history and trace id")
    async def get_order(self, deps: OrderDeps, order_id: str) -> StaffOrderView:
        return staff_order_view(await orders.staff_get_order(deps, order_id))


class SubscriptionController(Controller):
    path = "/api/v1/subscriptions"
    tags = ["scheduled orders"]

    @post(
        "/",
        summary="Order the same thing every month or week, paid from the balance (自动充值)",
        description="Each run places one order with the Idempotency-Key subscription:{id}:{run}; a failed run "
        "(short balance, sold out) is recorded and notified, not retried. 422 names each bad field.",
    )
    async def create(
        self, deps: OrderDeps, caller: Caller, data: JSONBody[SubscriptionIn], key: IdempotencyHeader = None
    ) -> SubscriptionView:
        return subscription_view(await subscriptions.create(deps, caller, data, idempotency_key(key)))

    @get("/", summary="My active subscriptions, with their latest runs")
    async def list_subscriptions(self, deps: OrderDeps, caller: Caller, paging: Paging) -> Page[SubscriptionView]:
        docs, total = await subscriptions.list_own(deps, caller.user_id, paging)
        return paging.of([subscription_view(d) for d in docs], total)

    @get("/{subscription_id:str}", summary="One of my subscriptions, with its latest runs")
    async def get_subscription(self, deps: OrderDeps, caller: Caller, subscription_id: str) -> SubscriptionView:
        return subscription_view(await subscriptions.get_own(deps, caller.user_id, subscription_id))

    @delete("/{subscription_id:str}", summary="Stop a subscription (no further runs)")
    async def delete_subscription(self, deps: OrderDeps, caller: Caller, subscription_id: str) -> None:
        await subscriptions.cancel(deps, caller.user_id, subscription_id)


class AgentOrdersController(Controller):
    path = "/api/v1/agent/orders"
    tags = ["agents"]
    guards = [AGENT]

    @get("/", summary="My sub-site's orders, newest first, with the commission of each (no card keys)")
    async def list_orders(self, deps: OrderDeps, caller: Caller, paging: Paging) -> Page[AgentOrderView]:
        docs, total = await sites.agent_orders(deps, caller.user_id, paging)
        return paging.of([agent_order_view(d) for d in docs], total)


CONTROLLERS: list[Any] = [
    OrderController,
    BatchController,
    SubscriptionController,
    StaffOrderController,
    AgentOrdersController,
]
