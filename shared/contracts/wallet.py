"""Events of the wallet service (topic `wallet.events`). Payment events are keyed by order id, so
they share the order's partition order with `order.events` consumers; account events by user id."""

from __future__ import annotations

from shared.contracts import topics
from shared.contracts.registry import Event, event


@event("wallet.account-opened", topic=topics.WALLET, key="user_id")
class AccountOpened(Event, frozen=True, kw_only=True):
    user_id: str


@event("wallet.payment-captured", topic=topics.WALLET, key="order_id")
class PaymentCaptured(Event, frozen=True, kw_only=True):
    order_id: str
    user_id: str
    amount_cents: int
    entry_id: str


@event("wallet.payment-declined", topic=topics.WALLET, key="order_id")
class PaymentDeclined(Event, frozen=True, kw_only=True):
    """`reason`: insufficient-balance, no-account, coupon-unavailable."""

    order_id: str
    user_id: str
    reason: str
    balance_cents: int | None = None


@event("wallet.refund-completed", topic=topics.WALLET, key="order_id")
class RefundCompleted(Event, frozen=True, kw_only=True):
    order_id: str
    user_id: str
    amount_cents: int
    entry_id: str


@event("wallet.topup-succeeded", topic=topics.WALLET, key="user_id")
class TopupSucceeded(Event, frozen=True, kw_only=True):
    topup_id: str
    user_id: str
    amount_cents: int
    points: int = 0
    channel: str = ""
