"""Driving support without the order saga: publish the events order and identity would emit to
the real broker, then look through the gateway, the mail sink and the topics."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaProducer

from shared.contracts.envelope import new_id
from shared.contracts.order import OrderStatusChanged
from shared.contracts.registry import Event
from tests import helpers

T = TypeVar("T")

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def publish(producer: AIOKafkaProducer, payload: Event, *, event_id: str | None = None) -> str:
    """Send an event as its owning service's relay would; returns its event id."""
    return (await helpers.publish(producer, payload, event_id=event_id)).event_id


def status_changed(
    order_id: str,
    user_id: str,
    status: str,
    previous: str | None = None,
    *,
    partner_key_id: str | None = None,
    total_cents: int = 10000,
    quantity: int = 2,
    sku_id: str = "sku-1",
) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order_id,
        user_id=user_id,
        status=status,
        previous_status=previous,
        sku_id=sku_id,
        quantity=quantity,
        total_cents=total_cents,
        at=datetime.now(UTC),
        partner_key_id=partner_key_id,
    )


eventually = helpers.eventually


async def delivered_order(
    producer: AIOKafkaProducer, gateway: httpx.AsyncClient, user_id: str, headers: dict[str, str], **kw: Any
) -> str:
    """A delivered order of `user_id` that support knows (its delivery notice is there)."""
    order_id = new_id()
    for previous, status in ((None, "paid"), ("paid", "delivering"), ("delivering", "delivered")):
        await publish(producer, status_changed(order_id, user_id, status, previous, **kw))

    async def noticed() -> bool:
        r = await gateway.get("/api/v1/notifications", headers=headers, params={"page_size": 100})
        return any(n["ref"].get("order_id") == order_id for n in r.json()["items"])

    await eventually(noticed, message=f"support saw order {order_id}")
    return order_id


def valid_signature(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(), signature)
