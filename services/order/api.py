"""The order service's HTTP API: quote (信息预览), place, the order center, cancel and urge."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.params import JSONBody, Parameter

from services.order.domain import GROUPS, Status, may_cancel, may_urge
from services.order.placing import OrderRequest, place, placement_outcome, price
from services.order.saga import OrderDeps, cancel
from services.order.store import ORDERS
from shared.auth import Caller
from shared.contracts.envelope import utcnow
from shared.contracts.order import OrderUrged
from shared.errors import Problem, not_found, validation_problem
from shared.messaging.outbox import Tx
from shared.runtime import Runtime


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
    history: list[HistoryEntry] = []


class OrderPage(msgspec.Struct, kw_only=True):
    items: list[OrderView]
    page: int
    page_size: int
    total: int


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
        history=[HistoryEntry(status=h["status"], at=h["at"], reason=h.get("reason")) for h in doc.get("history", [])],
    )


async def own_order(runtime: Runtime, caller: Caller, order_id: str) -> dict[str, Any]:
    """The caller's order; someone else's is indistinguishable from a missing one (404)."""
    doc: dict[str, Any] | None = await runtime.mongo.db[ORDERS].find_one({"_id": order_id, "user_id": caller.user_id})
    if doc is None:
        raise not_found("order")
    return doc


class OrderController(Controller):
    path = "/api/v1/orders"
    tags = ["orders"]

    @post("/quote", status_code=200, summary="Price an order and check it before paying (信息预览)")
    async def quote(self, runtime: Runtime, caller: Caller, data: JSONBody[OrderRequest]) -> QuoteView:
        deps = runtime.get(OrderDeps)
        sku, q = await price(runtime, deps, caller, data, with_stock=True)
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
        )

    @post(
        "/",
        summary="Place an order and pay with the balance",
        description="409 out-of-stock when stock is short; 402 insufficient-balance when the balance is. "
        "Send Idempotency-Key to make retries safe.",
    )
    async def place(
        self,
        runtime: Runtime,
        caller: Caller,
        data: JSONBody[OrderRequest],
        idempotency_key: Annotated[str | None, Parameter(header="Idempotency-Key", max_length=200)] = None,
    ) -> dict[str, Any]:
        order = await place(runtime, runtime.get(OrderDeps), caller, data, idempotency_key)
        return placement_outcome(order)

    @get("/", summary="My orders (订单中心), newest first")
    async def list_orders(
        self,
        runtime: Runtime,
        caller: Caller,
        status: str | None = None,
        group: str | None = None,
        page: Annotated[int, Parameter(ge=1)] = 1,
        page_size: Annotated[int, Parameter(ge=1, le=100)] = 20,
    ) -> OrderPage:
        query: dict[str, Any] = {"user_id": caller.user_id}
        if status is not None:
            wanted = [s.strip() for s in status.split(",") if s.strip()]
            bad = [s for s in wanted if s not in Status._value2member_map_]
            if bad:
                raise validation_problem([{"field": "status", "message": f"unknown status {', '.join(bad)}"}])
            query["status"] = {"$in": wanted}
        if group is not None:
            if group not in GROUPS:
                raise validation_problem([{"field": "group", "message": f"one of {', '.join(GROUPS)}"}])
            query.setdefault("status", {"$in": [s.value for s in GROUPS[group]]})
        orders = runtime.mongo.db[ORDERS]
        docs = (
            await orders.find(query, {"history": 0})
            .sort("created_at", -1)
            .skip((page - 1) * page_size)
            .limit(page_size)
            .to_list(page_size)
        )
        total = await orders.count_documents(query)
        return OrderPage(items=[order_view(d) for d in docs], page=page, page_size=page_size, total=total)

    @get("/{order_id:str}", summary="One of my orders, with its history")
    async def get_order(self, runtime: Runtime, caller: Caller, order_id: str) -> OrderView:
        return order_view(await own_order(runtime, caller, order_id))

    @post("/{order_id:str}/cancel", status_code=200, summary="Cancel within the cancel window, before delivery")
    async def cancel_order(self, runtime: Runtime, caller: Caller, order_id: str) -> dict[str, str]:
        deps = runtime.get(OrderDeps)
        order = await own_order(runtime, caller, order_id)
        why_not = may_cancel(
            Status(order["status"]), order["created_at"], utcnow(), deps.settings.cancel_window_minutes
        )
        if why_not is not None:
            raise Problem(409, "cannot-cancel", "Cannot cancel", why_not, order_status=order["status"])

        async def run(tx: Tx) -> str:
            return await cancel(tx, deps, order)

        outcome = await runtime.uow.run(run)
        return {"order_id": order_id, "result": outcome}

    @post("/{order_id:str}/urge", status_code=200, summary="Ask to hurry a late order (催单)")
    async def urge(self, runtime: Runtime, caller: Caller, order_id: str) -> dict[str, Any]:
        deps = runtime.get(OrderDeps)
        order = await own_order(runtime, caller, order_id)
        now = utcnow()
        why_not = may_urge(
            Status(order["status"]), order.get("paid_at"), order.get("urged_at"), now, deps.settings.urge_wait_minutes
        )
        if why_not is not None:
            raise Problem(409, "cannot-urge", "Cannot urge yet", why_not, order_status=order["status"])

        async def run(tx: Tx) -> bool:
            result = await tx.db[ORDERS].update_one(
                {"_id": order_id, "urged_at": order.get("urged_at")},  # one urge per wait period
                {"$set": {"urged_at": now}, "$inc": {"urge_count": 1}},
                session=tx.session,
            )
            if result.modified_count:
                tx.emit(OrderUrged(order_id=order_id, user_id=caller.user_id, status=order["status"], urged_at=now))
            return bool(result.modified_count)

        urged = await runtime.uow.run(run)
        return {"order_id": order_id, "urged": urged, "urged_at": now}


CONTROLLERS: list[Any] = [OrderController]
