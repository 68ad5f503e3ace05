"""Driving the wallet end to end: events published to the real broker as identity and order
would publish them, HTTP through the gateway, and the wallet's answers read from its topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import msgspec
import pytest
from aiokafka import AIOKafkaProducer

from deploy.platform import Platform
from shared.contracts import topics
from shared.contracts.envelope import new_id
from shared.contracts.identity import UserRegistered
from shared.contracts.order import OrderPlaced, OrderStatusChanged, PaymentRequested, RefundRequested
from shared.contracts.registry import decode
from tests import helpers
from tests.helpers import auth
from tests.integration.kit import read_topic

T = TypeVar("T")
STAFF = {"roles": ("staff",)}
ADMIN = {"roles": ("admin", "staff")}


@pytest.fixture
async def producer(infra: dict[str, str]) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=infra["KAFKA_BOOTSTRAP_SERVERS"])
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def gw(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=15) as client:
        yield client


publish = helpers.publish


eventually = helpers.eventually


async def wallet(gw: httpx.AsyncClient, user_id: str) -> dict[str, Any]:
    r = await gw.get("/api/v1/wallet", headers=auth(user_id))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def open_account(gw: httpx.AsyncClient, producer: AIOKafkaProducer, user_id: str | None = None) -> str:
    user_id = user_id or new_id()
    await publish(producer, UserRegistered(user_id=user_id, email=f"{user_id[:8]}@example.com"))

    async def opened() -> bool:
        return bool((await wallet(gw, user_id))["opened"])

    await eventually(opened, message=f"account {user_id} opened")
    return user_id


async def fund(gw: httpx.AsyncClient, user_id: str, amount_cents: int) -> str:
    """Top up by bank transfer approved by staff (the quickest way to give a test user money)."""
    r = await gw.post(
        "/api/v1/wallet/topups", json={"amount_cents": amount_cents, "channel": "bank"}, headers=auth(user_id)
    )
    assert r.status_code == 201, r.text
    topup_id: str = r.json()["topup_id"]
    r = await gw.post(f"/api/v1/admin/topups/{topup_id}/approve", json={"note": "bank ref TEST"}, headers=auth(**STAFF))
    assert r.status_code == 200, r.text
    return topup_id


async def ledger(gw: httpx.AsyncClient, user_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        r = await gw.get("/api/v1/wallet/ledger", params={"page": page, "page_size": 200}, headers=auth(user_id))
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        if len(items) >= body["total"] or not body["items"]:
            return items
        page += 1


async def wallet_events(infra: dict[str, str], key: str | None = None, type_: str | None = None) -> list[Any]:
    """Decoded (envelope, payload) pairs on wallet.events, optionally only one aggregate / type."""
    out = []
    for record in await read_topic(infra["KAFKA_BOOTSTRAP_SERVERS"], topics.WALLET):
        env, payload = decode(record.value)
        if (key is None or env.key == key) and (type_ is None or env.type == type_):
            out.append((env, payload))
    return out


def payment(
    user_id: str,
    amount_cents: int,
    *,
    order_id: str | None = None,
    coupon_code: str | None = None,
    category_id: str = "cat-phone",
    description: str = "移动 100 元",
) -> PaymentRequested:
    return PaymentRequested(
        order_id=order_id or new_id(),
        user_id=user_id,
        amount_cents=amount_cents,
        coupon_code=coupon_code,
        sku_id="sku-1",
        category_id=category_id,
        description=description,
    )


def refund(p: PaymentRequested, amount_cents: int | None = None) -> RefundRequested:
    return RefundRequested(
        order_id=p.order_id,
        user_id=p.user_id,
        amount_cents=p.amount_cents if amount_cents is None else amount_cents,
        reason="card invalid",
    )


def placed(
    user_id: str,
    *,
    unit_price_cents: int,
    discount_cents: int,
    coupon_code: str | None,
    order_id: str | None = None,
    sku_id: str = "sku-1",
    category_id: str = "cat-phone",
) -> OrderPlaced:
    return OrderPlaced(
        order_id=order_id or new_id(),
        user_id=user_id,
        sku_id=sku_id,
        quantity=1,
        unit_price_cents=unit_price_cents,
        discount_cents=discount_cents,
        total_cents=unit_price_cents - discount_cents,
        coupon_code=coupon_code,
        delivery_mode="auto",
        category_id=category_id,
        expires_at=datetime.now(UTC) + timedelta(minutes=15),
    )


def status_changed(order: OrderPlaced, status: str) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order.order_id,
        user_id=order.user_id,
        status=status,
        previous_status="pending_payment",
        sku_id=order.sku_id,
        quantity=order.quantity,
        total_cents=order.total_cents,
        at=datetime.now(UTC),
    )


def to_dict(payload: Any) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(payload)
    return out
