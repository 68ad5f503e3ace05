"""The wallet's use cases against in-memory fakes of their deps (store, provider, unit of work):
top-ups (provider errors, Idempotency-Key), notifications credited once, payments, refunds and
the guarded top-up lifecycle. The real database is exercised by tests/integration and tests/e2e."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

import pytest
from pymongo.errors import DuplicateKeyError

from services.wallet.deps import WalletDeps
from services.wallet.domain import HOLD, TOPUP, Entry, HoldStatus, TopupStatus, sign
from services.wallet.provider import PaymentProvider, ProviderError
from services.wallet.settings import WalletSettings
from services.wallet.store import WalletStore
from services.wallet.usecases import accounts, coupons, order_payments, payments, topups
from shared.contracts.envelope import encode_envelope, new_id, utcnow
from shared.contracts.order import OrderPlaced, PaymentRequested, RefundRequested
from shared.contracts.registry import decode
from shared.contracts.wallet import (
    AccountOpened,
    PaymentCaptured,
    PaymentDeclined,
    PaymentPending,
    RefundCompleted,
    TopupSucceeded,
)
from shared.errors import Problem
from shared.idempotency import key_reused
from shared.messaging.consumer import RejectEvent
from shared.messaging.outbox import Tx, UnitOfWork

T = TypeVar("T")
Doc = dict[str, Any]
SECRET = "unit-test-provider-secret-0123456789abcdef"


class FakeStore(WalletStore):
    """The store's contract over dicts: guarded moves follow the domain tables, ledger keys are
    unique, idempotency records refuse another body."""

    def __init__(self) -> None:
        super().__init__(cast(Any, None))
        self.accounts: dict[str, Doc] = {}
        self.ledger: list[Entry] = []
        self.topups_by_id: dict[str, Doc] = {}
        self.declines: dict[str, Doc] = {}
        self.coupons_by_code: dict[str, Doc] = {}
        self.holds: dict[str, Doc] = {}
        self.grants: dict[str, Doc] = {}
        self.keys: dict[tuple[str, str], tuple[str, str]] = {}
        self.order_payments: dict[str, Doc] = {}

    async def open_account(self, tx: Tx, user_id: str, now: datetime) -> bool:
        if user_id in self.accounts:
            return False
        self.accounts[user_id] = {"_id": user_id, "balance_cents": 0, "points": 0, "paid_orders": 0}
        return True

    async def account(self, user_id: str, tx: Tx | None = None) -> Doc | None:
        return self.accounts.get(user_id)

    async def debit(self, tx: Tx, user_id: str, amount_cents: int, *, first_paid_order: bool) -> Doc | None:
        account = self.accounts.get(user_id)
        if account is None or account["balance_cents"] < amount_cents:
            return None
        if first_paid_order and account["paid_orders"]:
            return None
        account["balance_cents"] -= amount_cents
        account["paid_orders"] += 1
        return dict(account)

    async def credit(self, tx: Tx, user_id: str, amount_cents: int, points: int = 0) -> Doc | None:
        account = self.accounts.get(user_id)
        if account is None:
            return None
        account["balance_cents"] += amount_cents
        account["points"] += points
        return dict(account)

    async def entry(self, tx: Tx, key: str) -> Doc | None:
        return next((e for e in self.ledger if e["key"] == key), None)

    async def book(self, tx: Tx, entries: Sequence[Entry]) -> None:
        taken = {e["key"] for e in self.ledger}
        if any(e["key"] in taken for e in entries):
            raise DuplicateKeyError("ledger key")
        self.ledger.extend(entries)

    async def declined(self, tx: Tx, order_id: str) -> bool:
        return order_id in self.declines

    async def record_decline(self, tx: Tx, decline: Doc) -> None:
        self.declines[decline["_id"]] = decline

    async def topup(self, topup_id: str, *, user_id: str | None = None) -> Doc | None:
        doc = self.topups_by_id.get(topup_id)
        return doc if doc is not None and user_id in (None, doc["user_id"]) else None

    async def add_topup(self, tx: Tx, doc: Doc) -> None:
        self.topups_by_id[doc["_id"]] = dict(doc)

    async def move_topup(self, tx: Tx, topup_id: str, target: TopupStatus, fields: Doc) -> Doc | None:
        doc = self.topups_by_id.get(topup_id)
        if doc is None or not TOPUP.can_move(TopupStatus(doc["status"]), target):
            return None
        doc.update(status=target.value, **fields)
        return dict(doc)

    async def recall_topup(self, user_id: str, key: str | None, fp: str) -> str | None:
        if key is None or (user_id, key) not in self.keys:
            return None
        seen_fp, ref = self.keys[(user_id, key)]
        if seen_fp != fp:
            raise key_reused()
        return ref

    async def remember_topup(self, tx: Tx, user_id: str, key: str | None, fp: str, topup_id: str) -> None:
        if key is not None:
            self.keys[(user_id, key)] = (fp, topup_id)

    async def coupon(self, code: str, tx: Tx | None = None) -> Doc | None:
        return self.coupons_by_code.get(code)

    async def signup_coupons(self, tx: Tx, now: datetime) -> list[Doc]:
        return [c for c in self.coupons_by_code.values() if c.get("grant_on_signup") and c["expires_at"] > now]

    async def granted_totals(self, tx: Tx, code: str, user_ids: Sequence[str]) -> dict[str, int]:
        return {u: self.grants[f"{code}:{u}"]["total"] for u in user_ids if f"{code}:{u}" in self.grants}

    async def add_grants(self, tx: Tx, code: str, grants: Sequence[tuple[str, int, int]]) -> None:
        for user_id, _, n in grants:
            g = self.grants.setdefault(
                f"{code}:{user_id}", {"user_id": user_id, "total": 0, "available": 0, "held": 0, "used": 0}
            )
            g["total"] += n
            g["available"] += n

    async def usable_hold(self, tx: Tx, *, order_id: str, user_id: str, code: str) -> Doc | None:
        hold = self.holds.get(order_id)
        ok = hold is not None and (hold["code"], hold["user_id"]) == (code, user_id)
        return (
            hold if ok and hold is not None and HOLD.can_move(HoldStatus(hold["status"]), HoldStatus.CONSUMED) else None
        )

    async def move_hold(
        self, tx: Tx, order_id: str, target: HoldStatus, fields: Doc, *, source: HoldStatus | None = None
    ) -> Doc | None:
        hold = self.holds.get(order_id)
        if hold is None or not HOLD.can_move(HoldStatus(hold["status"]), target):
            return None
        if source is not None and hold["status"] != source.value:
            return None
        hold.update(status=target.value, **fields)
        return dict(hold)

    async def settle_grant(self, tx: Tx, code: str, user_id: str, *, used: bool, from_used: bool = False) -> None:
        g = self.grants[f"{code}:{user_id}"]
        g["used" if from_used else "held"] -= 1
        g["used" if used else "available"] += 1

    async def order_payment(self, order_id: str, tx: Tx | None = None) -> Doc | None:
        return self.order_payments.get(order_id)

    async def add_order_payment(self, tx: Tx, doc: Doc) -> None:
        if doc["_id"] in self.order_payments:
            raise DuplicateKeyError("order payment")
        self.order_payments[doc["_id"]] = dict(doc)

    async def move_order_payment(self, tx: Tx, order_id: str, target: TopupStatus, fields: Doc) -> Doc | None:
        doc = self.order_payments.get(order_id)
        if doc is None or not TOPUP.can_move(TopupStatus(doc["status"]), target):
            return None
        doc.update(status=target.value, **fields)
        return dict(doc)

    async def unanswered_order_payments(self, created_before: datetime) -> list[Doc]:
        return [
            dict(p)
            for p in self.order_payments.values()
            if p["status"] == "pending" and p["created_at"] <= created_before
        ]

    async def take_grant(self, tx: Tx, code: str, user_id: str) -> bool:
        g = self.grants.get(f"{code}:{user_id}")
        if g is None or g["available"] < 1:
            return False
        g["available"] -= 1
        g["held"] += 1
        return True

    async def hold_exists(self, tx: Tx, order_id: str) -> bool:
        return order_id in self.holds

    async def add_hold(self, tx: Tx, hold: Doc) -> None:
        self.holds[hold["_id"]] = dict(hold)


class FakeUnitOfWork(UnitOfWork):
    """Runs the function against the fake store as one transaction: its changes and events are
    kept only when it returns (the store is restored when it raises)."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.events: list[Any] = []

    async def run(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        before = copy.deepcopy(self.store.__dict__)
        tx = fake_tx()
        try:
            result = await fn(tx)
        except BaseException:
            self.store.__dict__.update(before)
            raise
        self.events.extend(decode(encode_envelope(envelope))[1] for envelope, _ in tx.events)
        return result


class FakeProvider(PaymentProvider):
    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse
        self.orders: list[str] = []
        self.answers: dict[str, dict[str, Any]] = {}

    async def create_order(self, *, trade_no: str, amount_cents: int, channel: str) -> dict[str, Any]:
        if self.refuse:
            raise ProviderError("provider answered 500")
        self.orders.append(trade_no)
        return {"provider_trade_no": f"P{trade_no}", "pay_url": f"https://pay.example/{trade_no}"}

    async def query(self, trade_no: str) -> dict[str, Any]:
        return self.answers[trade_no]


def fake_tx() -> Tx:
    return Tx(db=cast(Any, None), session=cast(Any, None), producer="wallet")


class World:
    def __init__(self, *, refuse: bool = False) -> None:
        self.store = FakeStore()
        self.uow = FakeUnitOfWork(self.store)
        self.provider = FakeProvider(refuse=refuse)
        settings = WalletSettings(payment_provider_secret=SECRET, topup_points_per_yuan=2)  # type: ignore[arg-type]
        self.deps = WalletDeps(settings=settings, store=self.store, provider=self.provider, uow=self.uow)

    async def user(self, balance_cents: int = 0) -> str:
        user_id = new_id()
        assert await self.uow.run(lambda tx: accounts.open_account(tx, user_id, self.store))
        self.store.accounts[user_id]["balance_cents"] = balance_cents
        return user_id

    def balance(self, user_id: str) -> int:
        return int(self.store.accounts[user_id]["balance_cents"])

    def events(self, kind: type[T]) -> list[T]:
        return [e for e in self.uow.events if isinstance(e, kind)]

    def notification(self, topup: Doc, **changes: Any) -> Doc:
        fields = {
            "merchant_trade_no": topup["_id"],
            "provider_trade_no": topup["provider_trade_no"],
            "amount_cents": topup["amount_cents"],
            "status": "success",
            **changes,
        }
        return {**fields, "sign": sign(fields, SECRET)}


async def problem_of(call: Awaitable[Any]) -> Problem:
    with pytest.raises(Problem) as caught:
        await call
    return caught.value


# -- creating a top-up ------------------------------------------------------------------------------


async def test_a_provider_error_is_a_502_problem_and_stores_nothing() -> None:
    w = World(refuse=True)
    user = await w.user()
    problem = await problem_of(topups.create_topup(w.deps, user, 1000, "alipay", "key-1"))
    assert (problem.status_code, problem.slug) == (502, "payment-provider-error")
    assert w.store.topups_by_id == {} and w.store.keys == {}


async def test_a_repeat_with_the_same_key_and_body_answers_the_first_topup() -> None:
    w = World()
    user = await w.user()
    first = await topups.create_topup(w.deps, user, 1000, "alipay", "key-1")
    again = await topups.create_topup(w.deps, user, 1000, "alipay", "key-1")
    assert again["_id"] == first["_id"] and first["pay_url"].endswith(first["_id"])
    assert len(w.store.topups_by_id) == 1 and w.provider.orders == [first["_id"]]
    # Without a key every request is a new top-up.
    other = await topups.create_topup(w.deps, user, 1000, "alipay", None)
    assert other["_id"] != first["_id"]


async def test_a_key_reused_for_another_body_is_422_and_creates_nothing() -> None:
    w = World()
    user = await w.user()
    await topups.create_topup(w.deps, user, 1000, "alipay", "key-1")
    problem = await problem_of(topups.create_topup(w.deps, user, 2000, "alipay", "key-1"))
    assert (problem.status_code, problem.slug) == (422, "idempotency-key-reused")
    assert len(w.store.topups_by_id) == 1


async def test_bad_requests_and_missing_accounts_are_refused_before_the_provider() -> None:
    w = World()
    user = await w.user()
    problem = await problem_of(topups.create_topup(w.deps, user, 0, "paypal", "k" * 201))
    assert problem.status_code == 422
    assert isinstance(problem.extra, dict)
    assert {e["field"] for e in problem.extra["errors"]} == {"amount_cents", "channel", "Idempotency-Key"}
    assert w.provider.orders == [] and w.store.topups_by_id == {}


async def test_a_top_up_opens_the_account_on_first_use_once() -> None:
    w = World()
    stranger = new_id()
    first = await topups.create_topup(w.deps, stranger, 1000, "alipay", None)
    await topups.create_topup(w.deps, stranger, 2000, "alipay", None)
    assert first["status"] == "pending"
    assert await w.store.account(stranger) is not None
    # The identity event arriving afterwards finds it open: one account-opened in all.
    assert [e.user_id for e in w.events(AccountOpened)] == [stranger]


async def test_a_bank_transfer_waits_for_staff_without_the_provider() -> None:
    w = World()
    user = await w.user()
    topup = await topups.create_topup(w.deps, user, 1000, "bank", None)
    assert topup["pay_url"] is None and w.provider.orders == []


# -- notifications ------------------------------------------------------------------------------------


async def test_a_notification_credits_once_and_its_duplicate_changes_nothing() -> None:
    w = World()
    user = await w.user()
    topup = await topups.create_topup(w.deps, user, 2550, "wechat", None)
    note = w.notification(topup)
    assert await topups.handle_notification(w.deps, "wechat", note) == "credited"
    assert await topups.handle_notification(w.deps, "wechat", note) == "unchanged"
    assert w.balance(user) == 2550 and w.store.accounts[user]["points"] == 25 * 2
    assert len(w.events(TopupSucceeded)) == 1
    assert w.store.topups_by_id[topup["_id"]]["status"] == "succeeded"
    assert sum(e["amount_cents"] for e in w.store.ledger) == 0
    assert sum(e.get("points", 0) for e in w.store.ledger) == 0


async def test_a_notification_with_another_amount_or_a_bad_signature_is_refused() -> None:
    w = World()
    user = await w.user()
    topup = await topups.create_topup(w.deps, user, 1000, "alipay", None)
    problem = await problem_of(topups.handle_notification(w.deps, "alipay", w.notification(topup, amount_cents=100000)))
    assert (problem.status_code, problem.slug) == (422, "amount-mismatch")
    forged = {**w.notification(topup), "sign": "0" * 64}
    assert (await problem_of(topups.handle_notification(w.deps, "alipay", forged))).status_code == 401
    wrong_channel = await problem_of(topups.handle_notification(w.deps, "wechat", w.notification(topup)))
    assert wrong_channel.status_code == 404
    assert w.balance(user) == 0 and w.store.ledger == [] and w.events(TopupSucceeded) == []
    assert w.store.topups_by_id[topup["_id"]]["status"] == "pending"


async def test_a_failed_topup_cannot_be_credited_or_approved_later() -> None:
    w = World()
    user = await w.user()
    topup = await topups.create_topup(w.deps, user, 1000, "alipay", None)
    assert await topups.handle_notification(w.deps, "alipay", w.notification(topup, status="fail")) == "failed"
    assert await topups.handle_notification(w.deps, "alipay", w.notification(topup)) == "unchanged"
    assert w.balance(user) == 0
    bank = await topups.create_topup(w.deps, user, 1000, "bank", None)
    await topups.reject_bank_topup(w.deps, "staff-1", bank["_id"], "no transfer arrived")
    problem = await problem_of(topups.approve_bank_topup(w.deps, "staff-1", bank["_id"], "ref 123"))
    assert (problem.status_code, problem.slug) == (409, "topup-not-pending")
    assert w.balance(user) == 0


async def test_staff_approve_a_bank_transfer_once_with_an_audit() -> None:
    w = World()
    user = await w.user()
    bank = await topups.create_topup(w.deps, user, 1000, "bank", None)
    done = await topups.approve_bank_topup(w.deps, "staff-1", bank["_id"], " ref 123 ")
    assert (done["status"], done["approved_by"], done["approval_note"]) == ("succeeded", "staff-1", "ref 123")
    assert (await problem_of(topups.approve_bank_topup(w.deps, "staff-1", bank["_id"], "again"))).status_code == 409
    assert w.balance(user) == 1000


# -- payments and refunds -----------------------------------------------------------------------------


def payment(user_id: str, amount_cents: int) -> PaymentRequested:
    return PaymentRequested(order_id=new_id(), user_id=user_id, amount_cents=amount_cents, sku_id="s", category_id="c")


async def test_a_payment_larger_than_the_balance_is_declined_once_and_debits_nothing() -> None:
    w = World()
    user = await w.user(balance_cents=500)
    p = payment(user, 501)
    await w.uow.run(lambda tx: payments.capture_payment(tx, p, w.store))
    await w.uow.run(lambda tx: payments.capture_payment(tx, p, w.store))  # a duplicate request
    [declined] = w.events(PaymentDeclined)
    assert (declined.reason, declined.balance_cents) == ("insufficient-balance", 500)
    assert w.balance(user) == 500 and w.store.ledger == [] and w.events(PaymentCaptured) == []


async def test_a_payment_without_an_account_is_declined() -> None:
    w = World()
    await w.uow.run(lambda tx: payments.capture_payment(tx, payment("nobody", 100), w.store))
    assert [d.reason for d in w.events(PaymentDeclined)] == ["no-account"]


async def test_a_payment_is_captured_once_and_refunded_once() -> None:
    w = World()
    user = await w.user(balance_cents=1000)
    p = payment(user, 700)
    await w.uow.run(lambda tx: payments.capture_payment(tx, p, w.store))
    await w.uow.run(lambda tx: payments.capture_payment(tx, p, w.store))
    [captured] = w.events(PaymentCaptured)
    assert w.balance(user) == 300
    assert captured.entry_id == next(e["_id"] for e in w.store.ledger if e["key"] == f"payment:{p.order_id}:user")

    r = RefundRequested(order_id=p.order_id, user_id=user, amount_cents=700, reason="not delivered")
    await w.uow.run(lambda tx: payments.refund_payment(tx, r, w.store))
    await w.uow.run(lambda tx: payments.refund_payment(tx, r, w.store))
    assert len(w.events(RefundCompleted)) == 1 and w.balance(user) == 1000
    assert sorted(e["key"] for e in w.store.ledger) == sorted(
        f"{kind}:{p.order_id}:{side}" for kind in ("payment", "refund") for side in ("user", "platform")
    )
    assert sum(e["amount_cents"] for e in w.store.ledger) == 0


async def test_a_refund_of_more_than_was_paid_or_of_nothing_paid_is_rejected() -> None:
    w = World()
    user = await w.user(balance_cents=1000)
    p = payment(user, 400)
    await w.uow.run(lambda tx: payments.capture_payment(tx, p, w.store))
    too_much = RefundRequested(order_id=p.order_id, user_id=user, amount_cents=401, reason="x")
    with pytest.raises(RejectEvent, match="exceeds"):
        await w.uow.run(lambda tx: payments.refund_payment(tx, too_much, w.store))
    unpaid = RefundRequested(order_id=new_id(), user_id=user, amount_cents=1, reason="x")
    with pytest.raises(RejectEvent, match="no payment"):
        await w.uow.run(lambda tx: payments.refund_payment(tx, unpaid, w.store))
    assert w.balance(user) == 600 and w.events(RefundCompleted) == []


async def test_a_payment_with_a_coupon_that_is_not_held_is_declined() -> None:
    w = World()
    user = await w.user(balance_cents=1000)
    p = PaymentRequested(
        order_id=new_id(), user_id=user, amount_cents=100, sku_id="s", category_id="c", coupon_code="WELCOME"
    )
    await w.uow.run(lambda tx: payments.capture_payment(tx, p, w.store))
    assert [d.reason for d in w.events(PaymentDeclined)] == ["coupon-unavailable"]
    assert w.balance(user) == 1000


async def test_a_held_coupon_is_consumed_with_the_payment() -> None:
    w = World()
    user = await w.user(balance_cents=1000)
    order_id = new_id()
    w.store.coupons_by_code["WELCOME"] = {"_id": "WELCOME", "first_order_only": False}
    w.store.grants[f"WELCOME:{user}"] = {"user_id": user, "total": 1, "available": 0, "held": 1, "used": 0}
    w.store.holds[order_id] = {"_id": order_id, "code": "WELCOME", "user_id": user, "status": "held"}
    p = PaymentRequested(
        order_id=order_id, user_id=user, amount_cents=100, sku_id="s", category_id="c", coupon_code="WELCOME"
    )
    await w.uow.run(lambda tx: payments.capture_payment(tx, p, w.store))
    assert len(w.events(PaymentCaptured)) == 1
    assert w.store.holds[order_id]["status"] == "consumed"
    assert (w.store.grants[f"WELCOME:{user}"]["held"], w.store.grants[f"WELCOME:{user}"]["used"]) == (0, 1)


async def test_new_accounts_open_once_with_their_signup_coupons() -> None:
    w = World()
    w.store.coupons_by_code["HELLO"] = {
        "_id": "HELLO",
        "grant_on_signup": True,
        "per_user_limit": 1,
        "expires_at": utcnow() + timedelta(days=1),
    }
    user = await w.user()
    assert not await w.uow.run(lambda tx: accounts.open_account(tx, user, w.store))
    assert w.store.grants[f"HELLO:{user}"]["available"] == 1


# -- orders paid through the provider ---------------------------------------------------------------------


def with_coupon(w: World, user: str, order_id: str, status: str = "held") -> None:
    w.store.coupons_by_code["FIRST"] = {"_id": "FIRST", "first_order_only": True}
    held = 1 if status == "held" else 0
    w.store.grants[f"FIRST:{user}"] = {"user_id": user, "total": 1, "available": 1 - held, "held": held, "used": 0}
    w.store.holds[order_id] = {"_id": order_id, "code": "FIRST", "user_id": user, "status": status}


def provider_payment(user_id: str, amount_cents: int, coupon_code: str | None = None) -> PaymentRequested:
    return PaymentRequested(
        order_id=new_id(),
        user_id=user_id,
        amount_cents=amount_cents,
        sku_id="s",
        category_id="c",
        coupon_code=coupon_code,
        method="provider",
        channel="alipay",
    )


def order_notification(w: World, order_id: str, **changes: Any) -> Doc:
    payment_doc = w.store.order_payments[order_id]
    fields = {
        "merchant_trade_no": f"order-{order_id}",
        "provider_trade_no": payment_doc["provider_trade_no"],
        "amount_cents": payment_doc["amount_cents"],
        "status": "success",
        **changes,
    }
    return {**fields, "sign": sign(fields, SECRET)}


async def test_a_provider_payment_is_registered_once_and_answers_its_pay_url() -> None:
    w = World()
    user = await w.user()
    p = provider_payment(user, 900)
    await w.uow.run(lambda tx: order_payments.request_payment(tx, w.deps, p))
    await w.uow.run(lambda tx: order_payments.request_payment(tx, w.deps, p))  # redelivered
    [pending] = w.events(PaymentPending)
    assert pending.pay_url == f"https://pay.example/order-{p.order_id}" and pending.amount_cents == 900
    assert w.provider.orders == [f"order-{p.order_id}"]
    assert w.events(PaymentCaptured) == [] and w.balance(user) == 0


async def test_the_signed_notification_pays_the_order_once_through_the_balance() -> None:
    w = World()
    user = await w.user(balance_cents=50)
    p = provider_payment(user, 900, coupon_code="FIRST")
    with_coupon(w, user, p.order_id)
    await w.uow.run(lambda tx: order_payments.request_payment(tx, w.deps, p))
    note = order_notification(w, p.order_id)
    assert await topups.handle_notification(w.deps, "alipay", note) == "paid"
    assert await topups.handle_notification(w.deps, "alipay", note) == "unchanged"  # a duplicate
    [captured] = w.events(PaymentCaptured)
    assert captured.order_id == p.order_id and captured.amount_cents == 900
    assert w.balance(user) == 50  # in from the provider, out to the order
    assert w.store.holds[p.order_id]["status"] == "consumed"
    assert {e["key"] for e in w.store.ledger} >= {f"provider:{p.order_id}:user", f"payment:{p.order_id}:user"}
    assert sum(e["amount_cents"] for e in w.store.ledger) == 0


async def test_forged_or_mismatched_order_notifications_change_nothing() -> None:
    w = World()
    user = await w.user()
    p = provider_payment(user, 900)
    await w.uow.run(lambda tx: order_payments.request_payment(tx, w.deps, p))
    forged = {**order_notification(w, p.order_id), "sign": "0" * 64}
    assert (await problem_of(topups.handle_notification(w.deps, "alipay", forged))).status_code == 401
    cheaper = order_notification(w, p.order_id, amount_cents=1)
    assert (await problem_of(topups.handle_notification(w.deps, "alipay", cheaper))).slug == "amount-mismatch"
    unknown = await problem_of(topups.handle_notification(w.deps, "wechat", order_notification(w, p.order_id)))
    assert unknown.status_code == 404
    assert w.events(PaymentCaptured) == [] and w.store.ledger == []
    assert w.store.order_payments[p.order_id]["status"] == "pending"


async def test_a_payment_after_the_coupon_was_released_is_still_captured_without_it() -> None:
    """The order expired (coupon released) before the notification: the money is taken into the
    balance and captured; the order service answers with a refund, so nothing is lost."""
    w = World()
    user = await w.user()
    p = provider_payment(user, 900, coupon_code="FIRST")
    with_coupon(w, user, p.order_id)
    await w.uow.run(lambda tx: order_payments.request_payment(tx, w.deps, p))
    await w.uow.run(lambda tx: coupons.release_coupon(tx, p.order_id, "expired", w.store))
    assert await topups.handle_notification(w.deps, "alipay", order_notification(w, p.order_id)) == "paid"
    assert len(w.events(PaymentCaptured)) == 1
    assert w.store.holds[p.order_id]["status"] == "released"
    assert w.store.grants[f"FIRST:{user}"]["available"] == 1


async def test_a_provider_payment_whose_coupon_is_not_held_is_declined_before_the_provider() -> None:
    w = World()
    user = await w.user()
    p = provider_payment(user, 900, coupon_code="FIRST")
    with_coupon(w, user, p.order_id, status="rejected")
    await w.uow.run(lambda tx: order_payments.request_payment(tx, w.deps, p))
    assert [d.reason for d in w.events(PaymentDeclined)] == ["coupon-unavailable"]
    assert w.provider.orders == [] and w.events(PaymentPending) == []


async def test_a_provider_error_declines_the_order_payment() -> None:
    w = World(refuse=True)
    user = await w.user()
    await w.uow.run(lambda tx: order_payments.request_payment(tx, w.deps, provider_payment(user, 900)))
    assert [d.reason for d in w.events(PaymentDeclined)] == ["provider-unavailable"]


async def test_a_refund_gives_the_consumed_coupon_back() -> None:
    w = World()
    user = await w.user(balance_cents=1000)
    order_id = new_id()
    with_coupon(w, user, order_id)
    p = PaymentRequested(
        order_id=order_id, user_id=user, amount_cents=100, sku_id="s", category_id="c", coupon_code="FIRST"
    )
    await w.uow.run(lambda tx: payments.capture_payment(tx, p, w.store))
    assert w.store.grants[f"FIRST:{user}"]["used"] == 1
    r = RefundRequested(order_id=order_id, user_id=user, amount_cents=100, reason="not delivered")
    await w.uow.run(lambda tx: payments.refund_payment(tx, r, w.store))
    grant = w.store.grants[f"FIRST:{user}"]
    assert (grant["available"], grant["held"], grant["used"]) == (1, 0, 0)
    assert w.store.holds[order_id]["status"] == "released"


async def test_two_orders_placed_with_one_coupon_hold_it_once() -> None:
    w = World()
    user = await w.user(balance_cents=10000)
    w.store.coupons_by_code["ONE"] = {
        "_id": "ONE",
        "kind": "fixed",
        "amount_off_cents": 100,
        "expires_at": utcnow() + timedelta(days=1),
    }
    w.store.grants[f"ONE:{user}"] = {"user_id": user, "total": 1, "available": 1, "held": 0, "used": 0}
    placed = [
        OrderPlaced(
            order_id=new_id(),
            user_id=user,
            sku_id="s",
            quantity=1,
            unit_price_cents=1000,
            discount_cents=100,
            total_cents=900,
            coupon_code="ONE",
            delivery_mode="auto",
            category_id="c",
            expires_at=utcnow() + timedelta(minutes=15),
        )
        for _ in range(2)
    ]
    for o in placed:
        await w.uow.run(lambda tx, o=o: coupons.hold_coupon(tx, o, w.store))
    assert [w.store.holds[o.order_id]["status"] for o in placed] == ["held", "rejected"]


async def test_the_poll_pays_an_order_whose_notification_was_lost() -> None:
    w = World()
    w.deps = dataclasses.replace(w.deps, settings=w.deps.settings.model_copy(update={"topup_poll_after_seconds": 0}))
    user = await w.user()
    p = provider_payment(user, 900)
    await w.uow.run(lambda tx: order_payments.request_payment(tx, w.deps, p))
    trade = f"order-{p.order_id}"
    w.provider.answers[trade] = {**order_notification(w, p.order_id), "status": "pending"}
    assert await order_payments.poll_once(w.deps) == 0
    w.provider.answers[trade] = order_notification(w, p.order_id)
    assert await order_payments.poll_once(w.deps) == 1
    assert await order_payments.poll_once(w.deps) == 0  # settled: no longer polled
    assert len(w.events(PaymentCaptured)) == 1 and w.store.order_payments[p.order_id]["status"] == "succeeded"
