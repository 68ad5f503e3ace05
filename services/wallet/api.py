"""The wallet service's HTTP API (served under the public paths, reached through the gateway).

Buyer: `GET /api/v1/wallet`, top-ups, ledger pages and the spending report. Provider:
`POST /api/v1/payments/notify/{channel}`. Staff: `/api/v1/admin/topups` (bank transfers),
`/api/v1/admin/coupons` (define, list, grant).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any, Literal

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.params import JSONBody, Parameter
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.wallet import coupons, ledger, store
from services.wallet.domain import Coupon, definition_errors, months_back, spending_report
from services.wallet.provider import BANK, PROVIDER_CHANNELS, PaymentProvider, ProviderError
from services.wallet.settings import WalletSettings
from services.wallet.store import COUPONS, IDEMPOTENCY, TOPUPS
from services.wallet.topups import handle_notification
from shared.auth import Caller, require_roles
from shared.contracts.envelope import new_id, utcnow
from shared.errors import Problem, not_found, validation_problem
from shared.messaging.outbox import Tx
from shared.runtime import Runtime

log = logging.getLogger(__name__)

STAFF = require_roles("staff", "admin")
ADMIN = require_roles("admin")


class TopupRequest(msgspec.Struct, kw_only=True):
    amount_cents: int
    channel: str


class TopupView(msgspec.Struct, kw_only=True):
    topup_id: str
    status: str
    amount_cents: int
    channel: str
    pay_url: str | None
    created_at: datetime


class StaffDecision(msgspec.Struct, kw_only=True):
    note: str = msgspec.field(default="")


class CouponRequest(msgspec.Struct, kw_only=True):
    code: str | None = None
    kind: Literal["fixed", "percent"]
    amount_off_cents: int = 0
    percent_off_bp: int = 0
    max_discount_cents: int | None = None
    min_spend_cents: int = 0
    sku_ids: list[str] = msgspec.field(default_factory=list)
    category_ids: list[str] = msgspec.field(default_factory=list)
    starts_at: datetime | None = None
    expires_at: datetime
    per_user_limit: int = 1
    first_order_only: bool = False
    grant_on_signup: bool = False
    description: str = ""


class CouponChange(msgspec.Struct, kw_only=True):
    active: bool | None = None
    expires_at: datetime | None = None
    description: str | None = None


class GrantRequest(msgspec.Struct, kw_only=True):
    user_ids: list[str]
    quantity: int = 1


def _settings(runtime: Runtime) -> WalletSettings:
    assert isinstance(runtime.settings, WalletSettings)
    return runtime.settings


def _topup_view(doc: dict[str, Any]) -> TopupView:
    return TopupView(
        topup_id=doc["_id"],
        status=doc["status"],
        amount_cents=doc["amount_cents"],
        channel=doc["channel"],
        pay_url=doc.get("pay_url"),
        created_at=doc["created_at"],
    )


AUDIT_FIELDS = (
    "credited_via",
    "approved_by",
    "approved_at",
    "approval_note",
    "rejected_by",
    "rejected_at",
    "rejection_note",
    "failure_reason",
    "provider_trade_no",
)


def _admin_topup_view(doc: dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = msgspec.to_builtins(_topup_view(doc))
    view["user_id"] = doc["user_id"]
    for name in AUDIT_FIELDS:
        value = doc.get(name)
        view[name] = value.isoformat() if isinstance(value, datetime) else value
    return view


def _coupon_view(coupon: dict[str, Any], grant: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    view = {
        "code": coupon["_id"],
        "kind": coupon["kind"],
        "description": coupon.get("description", ""),
        "amount_off_cents": coupon.get("amount_off_cents", 0),
        "percent_off_bp": coupon.get("percent_off_bp", 0),
        "max_discount_cents": coupon.get("max_discount_cents"),
        "min_spend_cents": coupon.get("min_spend_cents", 0),
        "sku_ids": coupon.get("sku_ids", []),
        "category_ids": coupon.get("category_ids", []),
        "expires_at": coupon["expires_at"].isoformat(),
        "per_user_limit": coupon.get("per_user_limit", 1),
        "first_order_only": coupon.get("first_order_only", False),
        "expired": coupon["expires_at"] <= now,
    }
    if grant is not None:
        view.update({"available": grant["available"], "held": grant["held"], "used": grant["used"]})
    return view


class WalletController(Controller):
    path = "/api/v1/wallet"
    tags = ["wallet"]

    @get("/", summary="Balance, points and coupons (资产概览)")
    async def overview(self, caller: Caller, runtime: Runtime) -> dict[str, Any]:
        db, now = runtime.mongo.db, utcnow()
        account = await db[store.ACCOUNTS].find_one({"_id": caller.user_id})
        owned = await store.user_coupons(db, caller.user_id)
        return {
            "user_id": caller.user_id,
            "opened": account is not None,
            "balance_cents": account["balance_cents"] if account else 0,
            "points": account["points"] if account else 0,
            "coupons": [_coupon_view(c["coupon"], c["grant"], now) for c in owned],
        }

    @post("/topups", summary="Start a top-up (充值): pay at pay_url", status_code=201)
    async def create_topup(
        self, caller: Caller, runtime: Runtime, request: Request[Any, Any, Any], data: JSONBody[TopupRequest]
    ) -> TopupView:
        settings = _settings(runtime)
        errors = []
        if not settings.topup_min_cents <= data.amount_cents <= settings.topup_max_cents:
            errors.append(
                {
                    "field": "amount_cents",
                    "message": f"must be between {settings.topup_min_cents} and {settings.topup_max_cents}",
                }
            )
        if data.channel not in (*PROVIDER_CHANNELS, BANK):
            errors.append({"field": "channel", "message": f"one of {', '.join((*PROVIDER_CHANNELS, BANK))}"})
        key = request.headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= 200:
            errors.append({"field": "Idempotency-Key", "message": "1 to 200 characters"})
        if errors:
            raise validation_problem(errors)
        db = runtime.mongo.db
        fingerprint = hashlib.sha256(msgspec.json.encode(data)).hexdigest()
        idem_id = f"{caller.user_id}:{key}" if key else None
        if idem_id is not None:
            seen = await db[IDEMPOTENCY].find_one({"_id": idem_id})
            if seen is not None:
                return await _replay(db, seen, fingerprint)
        if await db[store.ACCOUNTS].find_one({"_id": caller.user_id}, {"_id": 1}) is None:
            raise Problem(409, "no-account", "No wallet account", "the wallet account is not open yet")

        topup_id, now = new_id(), utcnow()
        doc: dict[str, Any] = {
            "_id": topup_id,
            "user_id": caller.user_id,
            "amount_cents": data.amount_cents,
            "channel": data.channel,
            "status": "pending",
            "created_at": now,
            "pay_url": None,
        }
        if data.channel != BANK:
            provider: PaymentProvider = request.app.state.provider
            try:
                created = await provider.create_order(
                    trade_no=topup_id, amount_cents=data.amount_cents, channel=data.channel
                )
            except ProviderError as exc:
                log.warning("payment provider refused top-up %s: %s", topup_id, exc)
                raise Problem(
                    502,
                    "payment-provider-error",
                    "Payment provider error",
                    "the payment provider could not take the payment",
                ) from exc
            doc.update(provider_trade_no=created["provider_trade_no"], pay_url=created["pay_url"])

        async def write(tx: Tx) -> None:
            await tx.db[TOPUPS].insert_one(doc, session=tx.session)
            if idem_id is not None:
                await tx.db[IDEMPOTENCY].insert_one(
                    {"_id": idem_id, "fingerprint": fingerprint, "topup_id": topup_id, "at": now}, session=tx.session
                )

        try:
            await runtime.uow.run(write)
        except DuplicateKeyError:
            seen = await db[IDEMPOTENCY].find_one({"_id": idem_id})
            if seen is None:
                raise
            return await _replay(db, seen, fingerprint)
        return _topup_view(doc)

    @get("/topups/{topup_id:str}", summary="A top-up's status: pending, succeeded or failed")
    async def get_topup(self, caller: Caller, runtime: Runtime, topup_id: str) -> TopupView:
        doc = await runtime.mongo.db[TOPUPS].find_one({"_id": topup_id, "user_id": caller.user_id})
        if doc is None:
            raise not_found("top-up")
        return _topup_view(doc)

    @get("/ledger", summary="Ledger entries of the caller's account, newest first")
    async def ledger_page(
        self,
        caller: Caller,
        runtime: Runtime,
        page: int = Parameter(default=1, ge=1, le=100000),
        page_size: int = Parameter(default=20, ge=1, le=200),
    ) -> dict[str, Any]:
        items, total = await store.ledger_page(runtime.mongo.db, caller.user_id, page, page_size)
        return {
            "page": page,
            "page_size": page_size,
            "total": total,
            "items": [
                {
                    "entry_id": e["_id"],
                    "at": e["at"].isoformat(),
                    "kind": e["kind"],
                    "ref": e.get("ref"),
                    "amount_cents": e["amount_cents"],
                    "points": e.get("points", 0),
                    "balance_after_cents": e.get("balance_after_cents"),
                    "category_id": e.get("category_id"),
                    "description": e.get("description", ""),
                }
                for e in items
            ],
        }

    @get("/report", summary="Spending by category and month (消费分析报告)")
    async def report(
        self, caller: Caller, runtime: Runtime, months: int = Parameter(default=6, ge=1, le=36)
    ) -> dict[str, Any]:
        since = months_back(utcnow(), months)
        lines = await store.report_lines(runtime.mongo.db, caller.user_id, since)
        return {"since": since.isoformat(), "months_requested": months, **spending_report(lines)}


async def _replay(db: Any, seen: dict[str, Any], fingerprint: str) -> TopupView:
    if seen["fingerprint"] != fingerprint:
        raise Problem(
            422, "idempotency-key-reused", "Idempotency key reused", "this Idempotency-Key was used with another body"
        )
    doc = await db[TOPUPS].find_one({"_id": seen["topup_id"]})
    if doc is None:
        raise not_found("top-up")
    return _topup_view(doc)


class PaymentNotifyController(Controller):
    path = "/api/v1/payments"
    tags = ["payments"]

    @post("/notify/{channel:str}", summary="Signed payment notification from the provider", status_code=200)
    async def notify(self, runtime: Runtime, channel: str, data: JSONBody[dict[str, Any]]) -> dict[str, str]:
        outcome = await handle_notification(runtime, channel, data)
        return {"result": "success", "outcome": outcome}


class AdminTopupController(Controller):
    path = "/api/v1/admin/topups"
    tags = ["admin"]
    guards = [STAFF]

    @get("/", summary="Top-ups by status and channel (e.g. bank transfers to approve)")
    async def list_topups(
        self, runtime: Runtime, status: str = "pending", channel: str | None = None, user_id: str | None = None
    ) -> dict[str, Any]:
        query: dict[str, Any] = {"status": status}
        if channel:
            query["channel"] = channel
        if user_id:
            query["user_id"] = user_id
        docs = await runtime.mongo.db[TOPUPS].find(query).sort("created_at", 1).to_list(length=200)
        return {"items": [_admin_topup_view(d) for d in docs]}

    @post("/{topup_id:str}/approve", summary="Credit a bank transfer after checking it (audited)", status_code=200)
    async def approve(
        self, caller: Caller, runtime: Runtime, topup_id: str, data: JSONBody[StaffDecision]
    ) -> TopupView:
        doc = await _bank_topup(runtime, topup_id)
        if not data.note.strip():
            raise validation_problem([{"field": "note", "message": "say what was checked (bank reference)"}])
        audit = {"approved_by": caller.user_id, "approved_at": utcnow(), "approval_note": data.note.strip()[:500]}
        points = _settings(runtime).topup_points_per_yuan

        async def credit(tx: Tx) -> dict[str, Any] | None:
            return await ledger.credit_topup(tx, topup_id, points_per_yuan=points, via="staff", extra=audit)

        if await runtime.uow.run(credit) is None:
            raise Problem(409, "topup-not-pending", "Top-up not pending", f"the top-up is {doc['status']}")
        log.info("bank top-up %s approved by %s", topup_id, caller.user_id)
        fresh = await runtime.mongo.db[TOPUPS].find_one({"_id": topup_id})
        return _topup_view(fresh or doc)

    @post("/{topup_id:str}/reject", summary="Refuse a bank transfer top-up (audited)", status_code=200)
    async def reject(self, caller: Caller, runtime: Runtime, topup_id: str, data: JSONBody[StaffDecision]) -> TopupView:
        await _bank_topup(runtime, topup_id)
        audit = {"rejected_by": caller.user_id, "rejected_at": utcnow(), "rejection_note": data.note.strip()[:500]}

        async def fail(tx: Tx) -> bool:
            return await ledger.fail_topup(tx, topup_id, reason="rejected by staff", extra=audit)

        if not await runtime.uow.run(fail):
            raise Problem(409, "topup-not-pending", "Top-up not pending", "the top-up is no longer pending")
        fresh = await runtime.mongo.db[TOPUPS].find_one({"_id": topup_id})
        assert fresh is not None
        return _topup_view(fresh)


async def _bank_topup(runtime: Runtime, topup_id: str) -> dict[str, Any]:
    doc: dict[str, Any] | None = await runtime.mongo.db[TOPUPS].find_one({"_id": topup_id})
    if doc is None:
        raise not_found("top-up")
    if doc["channel"] != BANK:
        raise Problem(
            409,
            "not-a-bank-transfer",
            "Not a bank transfer",
            "only bank transfers are approved by hand; provider payments complete by notification",
        )
    return doc


class AdminCouponController(Controller):
    path = "/api/v1/admin/coupons"
    tags = ["admin"]

    @post("/", summary="Define a coupon", status_code=201, guards=[ADMIN])
    async def create(self, runtime: Runtime, data: JSONBody[CouponRequest]) -> dict[str, Any]:
        code = (data.code or new_id()[:10]).strip().upper()
        rules = Coupon(
            code=code,
            kind=data.kind,
            amount_off_cents=data.amount_off_cents,
            percent_off_bp=data.percent_off_bp,
            max_discount_cents=data.max_discount_cents,
            min_spend_cents=data.min_spend_cents,
            sku_ids=tuple(data.sku_ids),
            category_ids=tuple(data.category_ids),
            starts_at=data.starts_at,
            expires_at=data.expires_at,
            per_user_limit=data.per_user_limit,
            first_order_only=data.first_order_only,
        )
        naive = [n for n in ("starts_at", "expires_at") if (t := getattr(data, n)) is not None and t.tzinfo is None]
        errors = (
            [{"field": n, "message": "give a time zone, e.g. 2027-01-01T00:00:00Z"} for n in naive]
            if naive
            else definition_errors(rules, utcnow())
        )
        if not 1 <= len(code) <= 40 or not code.replace("-", "").replace("_", "").isalnum():
            errors.append({"field": "code", "message": "1-40 letters, digits, - or _"})
        for name in ("amount_off_cents", "min_spend_cents", "max_discount_cents"):
            value = getattr(data, name)
            if value is not None and value < 0:
                errors.append({"field": name, "message": "must not be negative"})
        if errors:
            raise validation_problem(errors)
        doc = {
            "_id": code,
            **{k: v for k, v in msgspec.to_builtins(data, builtin_types=(datetime,)).items() if k != "code"},
            "active": True,
            "revision": 1,
            "created_at": utcnow(),
        }

        async def write(tx: Tx) -> None:
            await tx.db[COUPONS].insert_one(doc, session=tx.session)
            tx.emit(coupons.defined_event(doc))

        try:
            await runtime.uow.run(write)
        except DuplicateKeyError as exc:
            raise Problem(409, "coupon-exists", "Coupon exists", f"coupon {code} is already defined") from exc
        return {"code": code}

    @patch("/{code:str}", summary="Switch a coupon off or on, move its expiry, describe it", guards=[ADMIN])
    async def change(self, runtime: Runtime, code: str, data: JSONBody[CouponChange]) -> dict[str, Any]:
        changes = {k: v for k, v in msgspec.to_builtins(data, builtin_types=(datetime,)).items() if v is not None}
        if data.expires_at is not None and (data.expires_at.tzinfo is None or data.expires_at <= utcnow()):
            raise validation_problem([{"field": "expires_at", "message": "a future time with a time zone"}])
        if not changes:
            raise validation_problem([{"field": "body", "message": "nothing to change"}])

        async def write(tx: Tx) -> dict[str, Any] | None:
            doc: dict[str, Any] | None = await tx.db[COUPONS].find_one_and_update(
                {"_id": code},
                {"$set": changes, "$inc": {"revision": 1}},
                return_document=ReturnDocument.AFTER,
                session=tx.session,
            )
            if doc is not None:
                tx.emit(coupons.defined_event(doc))  # the order service's projection follows
            return doc

        doc = await runtime.uow.run(write)
        if doc is None:
            raise not_found("coupon")
        return {**_coupon_view(doc, None, utcnow()), "active": doc["active"], "revision": doc["revision"]}

    @get("/", summary="Every coupon", guards=[STAFF])
    async def list_coupons(self, runtime: Runtime) -> dict[str, Any]:
        now = utcnow()
        docs = await runtime.mongo.db[COUPONS].find({}).sort("created_at", -1).to_list(length=500)
        return {
            "items": [
                {**_coupon_view(d, None, now), "active": d.get("active", True), "revision": d["revision"]} for d in docs
            ]
        }

    @post(
        "/{code:str}/grants",
        summary="Give a coupon to users (up to its per-user limit)",
        status_code=200,
        guards=[STAFF],
    )
    async def grant(self, runtime: Runtime, code: str, data: JSONBody[GrantRequest]) -> dict[str, Any]:
        users = list(dict.fromkeys(u.strip() for u in data.user_ids if u.strip()))
        errors = []
        if not 1 <= len(users) <= 1000:
            errors.append({"field": "user_ids", "message": "1 to 1000 user ids"})
        if not 1 <= data.quantity <= 100:
            errors.append({"field": "quantity", "message": "1 to 100"})
        if errors:
            raise validation_problem(errors)
        coupon = await runtime.mongo.db[COUPONS].find_one({"_id": code})
        if coupon is None:
            raise not_found("coupon")
        if not coupon.get("active", True) or coupon["expires_at"] <= utcnow():
            raise Problem(409, "coupon-expired", "Coupon not grantable", "the coupon is inactive or expired")

        async def write(tx: Tx) -> list[tuple[str, int]]:
            return await coupons.grant(tx, coupon, users, data.quantity)

        result = await runtime.uow.run(write)
        return {
            "code": code,
            "granted": [{"user_id": u, "quantity": n} for u, n in result if n],
            "refused": [{"user_id": u, "reason": "per-user limit reached"} for u, n in result if not n],
        }


CONTROLLERS: list[Any] = [
    WalletController,
    PaymentNotifyController,
    AdminTopupController,
    AdminCouponController,
]
