"""The wallet service's HTTP API (served under the public paths, reached through the gateway):
thin controllers that parse, call one use case and shape the answer.

Buyer: `GET /api/v1/wallet`, top-ups, ledger pages and the spending report. Provider:
`POST /api/v1/payments/notify/{channel}`. Staff: `/api/v1/admin/topups` (bank transfers),
`/api/v1/admin/coupons` (define, list, grant).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, patch, post
from litestar.params import JSONBody, Parameter

from services.wallet.api_agents import AdminWithdrawalsController, AgentMoneyController
from services.wallet.deps import WalletDeps
from services.wallet.schemas import (
    CouponChange,
    CouponRequest,
    GrantRequest,
    StaffDecision,
    TopupRequest,
    TopupView,
    admin_topup_view,
    coupon_view,
    ledger_item,
    staff_coupon_view,
    topup_view,
)
from services.wallet.usecases import accounts, coupons, topups
from shared.auth import ADMIN, STAFF, Caller
from shared.contracts.envelope import utcnow
from shared.idempotency import IdempotencyHeader
from shared.paging import Page, Paging


class WalletController(Controller):
    path = "/api/v1/wallet"
    tags = ["wallet"]

    @get("/", summary="Balance, points and coupons (资产概览)")
    async def overview(self, caller: Caller, deps: WalletDeps) -> dict[str, Any]:
        account, owned = await accounts.overview(deps, caller.user_id)
        now = utcnow()
        return {
            "user_id": caller.user_id,
            "opened": account is not None,
            "balance_cents": account["balance_cents"] if account else 0,
            "points": account["points"] if account else 0,
            "coupons": [coupon_view(c["coupon"], c["grant"], now) for c in owned],
        }

    @post("/topups", summary="Start a top-up (充值): pay at pay_url", status_code=201)
    async def create_topup(
        self,
        caller: Caller,
        deps: WalletDeps,
        data: JSONBody[TopupRequest],
        idempotency_key: IdempotencyHeader = None,
    ) -> TopupView:
        doc = await topups.create_topup(deps, caller.user_id, data.amount_cents, data.channel, idempotency_key)
        return topup_view(doc)

    @get("/topups/{topup_id:str}", summary="A top-up's status: pending, succeeded or failed")
    async def get_topup(self, caller: Caller, deps: WalletDeps, topup_id: str) -> TopupView:
        return topup_view(await topups.topup_of(deps, caller.user_id, topup_id))

    @get("/ledger", summary="Ledger entries of the caller's account, newest first")
    async def ledger_page(self, caller: Caller, deps: WalletDeps, paging: Paging) -> Page[dict[str, Any]]:
        page = await accounts.ledger_page(deps, caller.user_id, paging)
        return paging.of([ledger_item(e) for e in page.items], page.total)

    @get("/report", summary="Spending by category and month (消费分析报告)")
    async def report(
        self, caller: Caller, deps: WalletDeps, months: int = Parameter(default=6, ge=1, le=36)
    ) -> dict[str, Any]:
        return await accounts.report(deps, caller.user_id, months)


class PaymentNotifyController(Controller):
    path = "/api/v1/payments"
    tags = ["payments"]

    @post("/notify/{channel:str}", summary="Signed payment notification from the provider", status_code=200)
    async def notify(self, deps: WalletDeps, channel: str, data: JSONBody[dict[str, Any]]) -> dict[str, str]:
        outcome = await topups.handle_notification(deps, channel, data)
        return {"result": "success", "outcome": outcome}


class AdminTopupController(Controller):
    path = "/api/v1/admin/topups"
    tags = ["admin"]
    guards = [STAFF]

    @get("/", summary="Top-ups by status and channel (e.g. bank transfers to approve)")
    async def list_topups(
        self, deps: WalletDeps, status: str = "pending", channel: str | None = None, user_id: str | None = None
    ) -> dict[str, Any]:
        docs = await topups.list_topups(deps, status, channel, user_id)
        return {"items": [admin_topup_view(d) for d in docs]}

    @post("/{topup_id:str}/approve", summary="Credit a bank transfer after checking it (audited)", status_code=200)
    async def approve(
        self, caller: Caller, deps: WalletDeps, topup_id: str, data: JSONBody[StaffDecision]
    ) -> TopupView:
        return topup_view(await topups.approve_bank_topup(deps, caller.user_id, topup_id, data.note))

    @post("/{topup_id:str}/reject", summary="Refuse a bank transfer top-up (audited)", status_code=200)
    async def reject(self, caller: Caller, deps: WalletDeps, topup_id: str, data: JSONBody[StaffDecision]) -> TopupView:
        return topup_view(await topups.reject_bank_topup(deps, caller.user_id, topup_id, data.note))


class AdminCouponController(Controller):
    path = "/api/v1/admin/coupons"
    tags = ["admin"]

    @post("/", summary="Define a coupon", status_code=201, guards=[ADMIN])
    async def create(self, deps: WalletDeps, data: JSONBody[CouponRequest]) -> dict[str, Any]:
        return {"code": await coupons.define_coupon(deps, data)}

    @patch("/{code:str}", summary="Switch a coupon off or on, move its expiry, describe it", guards=[ADMIN])
    async def change(self, deps: WalletDeps, code: str, data: JSONBody[CouponChange]) -> dict[str, Any]:
        return staff_coupon_view(await coupons.change_coupon(deps, code, data), utcnow())

    @get("/", summary="Every coupon", guards=[STAFF])
    async def list_coupons(self, deps: WalletDeps) -> dict[str, Any]:
        now = utcnow()
        return {"items": [staff_coupon_view(d, now) for d in await coupons.list_coupons(deps)]}

    @post(
        "/{code:str}/grants",
        summary="Give a coupon to users (up to its per-user limit)",
        status_code=200,
        guards=[STAFF],
    )
    async def grant(self, deps: WalletDeps, code: str, data: JSONBody[GrantRequest]) -> dict[str, Any]:
        result = await coupons.grant_coupon(deps, code, data.user_ids, data.quantity)
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
    AgentMoneyController,
    AdminWithdrawalsController,
]
