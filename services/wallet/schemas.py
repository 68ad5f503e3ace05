"""The wallet HTTP API's request bodies and answer shapes (msgspec structs and views of stored
documents)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar.openapi.spec import OpenAPIType, Schema

from services.wallet.domain import BANK, PROVIDER_CHANNELS
from shared.limits import AnyQuantity
from shared.money import SignedCents
from shared.strict_bodies import documented


class TopupRequest(msgspec.Struct, kw_only=True):
    amount_cents: SignedCents
    """Between the deployment's `TOPUP_MIN_CENTS` and `TOPUP_MAX_CENTS` (stated in the document by the app)."""
    channel: Annotated[str, documented(enum=[*PROVIDER_CHANNELS, BANK])]


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
    amount_off_cents: SignedCents = 0
    percent_off_bp: AnyQuantity = 0
    max_discount_cents: SignedCents | None = None
    min_spend_cents: SignedCents = 0
    sku_ids: list[str] = msgspec.field(default_factory=list)
    category_ids: list[str] = msgspec.field(default_factory=list)
    starts_at: datetime | None = None
    expires_at: datetime
    per_user_limit: AnyQuantity = 1
    first_order_only: bool = False
    grant_on_signup: bool = False
    description: str = ""


class CouponChange(msgspec.Struct, kw_only=True):
    active: bool | None = None
    expires_at: datetime | None = None
    description: str | None = None


class GrantRequest(msgspec.Struct, kw_only=True):
    # `grant_coupon`'s bounds, stated: 1..1000 distinct non-blank ids, 1..100 each.
    user_ids: Annotated[
        list[str],
        documented(min_items=1, max_items=1000, items=Schema(type=OpenAPIType.STRING, pattern=r"\S")),
    ]
    quantity: Annotated[AnyQuantity, documented(minimum=1, maximum=100)] = 1


def topup_view(doc: dict[str, Any]) -> TopupView:
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


def admin_topup_view(doc: dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = msgspec.to_builtins(topup_view(doc))
    view["user_id"] = doc["user_id"]
    for name in AUDIT_FIELDS:
        value = doc.get(name)
        view[name] = value.isoformat() if isinstance(value, datetime) else value
    return view


def coupon_view(coupon: dict[str, Any], grant: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
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


def staff_coupon_view(doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {**coupon_view(doc, None, now), "active": doc.get("active", True), "revision": doc["revision"]}


def ledger_item(e: dict[str, Any]) -> dict[str, Any]:
    return {
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
