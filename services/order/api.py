"""The order service's HTTP API: quote (信息预览), place, the order center, cancel and urge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody, Parameter

from services.order.batches import BATCHES, TEMPLATES, TemplateRow, place_batch
from services.order.domain import GROUPS, Status, may_cancel, may_urge
from services.order.placing import OrderRequest, place, placement_outcome, price
from services.order.saga import OrderDeps, cancel
from services.order.sheets import MAX_ROWS, Row, SheetError, read_sheet
from services.order.store import ORDERS
from shared.auth import Caller
from shared.contracts.envelope import new_id, utcnow
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


@dataclass
class BatchUpload:
    file: UploadFile
    save_as_template: str | None = None


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


def batch_view(doc: dict[str, Any]) -> BatchView:
    if doc.get("decline_reason") in ("insufficient-balance", "no-account"):
        raise Problem(
            402,
            "insufficient-balance",
            "Insufficient balance",
            f"the balance does not cover the batch total of {doc['total_cents']} cents",
            batch_id=doc["_id"],
            total_cents=doc["total_cents"],
        )
    return BatchView(
        batch_id=doc["_id"],
        status=doc["status"],
        accepted=len(doc["order_ids"]),
        rejected=doc["rejected"],
        order_ids=doc["order_ids"],
        total_cents=doc["total_cents"],
        decline_reason=doc.get("decline_reason"),
    )


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
        runtime: Runtime,
        caller: Caller,
        data: Annotated[BatchUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
        idempotency_key: Annotated[str | None, Parameter(header="Idempotency-Key", max_length=200)] = None,
    ) -> BatchView:
        content = await data.file.read()
        try:
            rows, rejected = read_sheet(data.file.filename or "", content)
        except SheetError as exc:
            raise validation_problem([{"field": "file", "message": str(exc)}], str(exc)) from exc
        deps = runtime.get(OrderDeps)
        if data.save_as_template:
            await save_template(
                runtime,
                caller,
                data.save_as_template,
                [TemplateRow(sku_id=r.sku_id, quantity=r.quantity, recipient=r.recipient) for r in rows],
            )
        doc = await place_batch(runtime, deps, caller, rows, rejected, idempotency_key=idempotency_key)
        return batch_view(doc)

    @get("/batches/{batch_id:str}", summary="A batch and what became of its rows")
    async def get_batch(self, runtime: Runtime, caller: Caller, batch_id: str) -> BatchView:
        doc = await runtime.mongo.db[BATCHES].find_one({"_id": batch_id, "user_id": caller.user_id})
        if doc is None:
            raise not_found("batch")
        return batch_view(doc)

    @post("/templates", summary="Save an order template (模板)")
    async def create_template(self, runtime: Runtime, caller: Caller, data: JSONBody[TemplateIn]) -> TemplateView:
        return await save_template(runtime, caller, data.name, data.rows)

    @get("/templates", summary="My saved templates")
    async def list_templates(self, runtime: Runtime, caller: Caller) -> list[TemplateView]:
        docs = await runtime.mongo.db[TEMPLATES].find({"user_id": caller.user_id}).sort("created_at", -1).to_list(100)
        return [_template_view(d) for d in docs]

    @delete("/templates/{template_id:str}", summary="Delete a template")
    async def delete_template(self, runtime: Runtime, caller: Caller, template_id: str) -> None:
        result = await runtime.mongo.db[TEMPLATES].delete_one({"_id": template_id, "user_id": caller.user_id})
        if not result.deleted_count:
            raise not_found("template")

    @post("/templates/{template_id:str}/run", summary="Order a template's rows again, as one batch")
    async def run_template(
        self,
        runtime: Runtime,
        caller: Caller,
        template_id: str,
        idempotency_key: Annotated[str | None, Parameter(header="Idempotency-Key", max_length=200)] = None,
    ) -> BatchView:
        doc = await runtime.mongo.db[TEMPLATES].find_one({"_id": template_id, "user_id": caller.user_id})
        if doc is None:
            raise not_found("template")
        rows = [
            Row(number=i, sku_id=r["sku_id"], quantity=r["quantity"], recipient=r.get("recipient", {}))
            for i, r in enumerate(doc["rows"], start=1)
        ]
        placed = await place_batch(
            runtime,
            runtime.get(OrderDeps),
            caller,
            rows,
            [],
            idempotency_key=idempotency_key,
            source=f"template:{template_id}",
        )
        return batch_view(placed)


async def save_template(runtime: Runtime, caller: Caller, name: str, rows: list[TemplateRow]) -> TemplateView:
    doc = {
        "_id": new_id(),
        "user_id": caller.user_id,
        "name": name,
        "rows": [msgspec.to_builtins(r) for r in rows],
        "created_at": utcnow(),
    }
    await runtime.mongo.db[TEMPLATES].insert_one(doc)
    return _template_view(doc)


def _template_view(doc: dict[str, Any]) -> TemplateView:
    return TemplateView(
        template_id=doc["_id"],
        name=doc["name"],
        created_at=doc["created_at"],
        rows=[msgspec.convert(r, TemplateRow) for r in doc["rows"]],
    )


CONTROLLERS.append(BatchController)
