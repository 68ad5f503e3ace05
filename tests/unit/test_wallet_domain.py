"""Pure wallet rules: the double-entry builder, lifecycles, coupon eligibility and discounts, points,
provider signatures, the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deploy import paysim
from services.wallet import domain
from services.wallet.domain import Coupon, ReportLine

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def coupon(**kw: object) -> Coupon:
    base: dict[str, object] = {
        "code": "C",
        "kind": "fixed",
        "amount_off_cents": 500,
        "expires_at": NOW + timedelta(days=1),
    }
    return Coupon(**{**base, **kw})  # type: ignore[arg-type]


def problem(c: Coupon, **kw: object) -> str | None:
    args: dict[str, object] = {
        "sku_id": "s1",
        "category_id": "c1",
        "subtotal_cents": 10000,
        "now": NOW,
        "paid_orders": 0,
    }
    return domain.coupon_problem(c, **{**args, **kw})  # type: ignore[arg-type]


def test_fixed_and_percent_discounts_in_integer_cents() -> None:
    assert domain.discount_cents(coupon(amount_off_cents=500), 10000) == 500
    assert domain.discount_cents(coupon(amount_off_cents=500), 300) == 300  # never below zero
    pct = coupon(kind="percent", percent_off_bp=1500)
    assert domain.discount_cents(pct, 999) == 150  # 149.85 rounds half-up
    assert domain.discount_cents(pct, 10) == 2  # 1.5 -> 2
    assert domain.discount_cents(coupon(kind="percent", percent_off_bp=5000, max_discount_cents=700), 10000) == 700
    assert domain.discount_cents(coupon(kind="percent", percent_off_bp=10000), 1234) == 1234


def test_eligibility_rules() -> None:
    assert problem(coupon()) is None
    assert problem(coupon(expires_at=NOW)) == domain.EXPIRED
    assert problem(coupon(starts_at=NOW + timedelta(hours=1))) == domain.NOT_STARTED
    assert problem(coupon(min_spend_cents=10001)) == domain.BELOW_MINIMUM
    assert problem(coupon(min_spend_cents=10000)) is None
    assert problem(coupon(sku_ids=("s2",))) == domain.NOT_APPLICABLE
    assert problem(coupon(sku_ids=("s1",))) is None
    assert problem(coupon(category_ids=("c1",))) is None
    assert problem(coupon(sku_ids=("s2",), category_ids=("c1",))) is None  # either list may match
    assert problem(coupon(first_order_only=True), paid_orders=1) == domain.NOT_FIRST_ORDER
    assert problem(coupon(first_order_only=True), paid_orders=0) is None
    assert problem(coupon(active=False)) == domain.INACTIVE


def test_definition_errors_and_grant_limits() -> None:
    assert domain.definition_errors(coupon(), NOW) == []
    fields = {e["field"] for e in domain.definition_errors(coupon(amount_off_cents=0, expires_at=NOW), NOW)}
    assert fields == {"amount_off_cents", "expires_at"}
    assert domain.definition_errors(coupon(kind="percent", percent_off_bp=10001), NOW)[0]["field"] == "percent_off_bp"
    assert domain.grantable(0, 1, 1) == 1
    assert domain.grantable(1, 1, 1) == 0
    assert domain.grantable(1, 5, 3) == 2


def test_points_per_whole_yuan() -> None:
    assert domain.points_for_topup(10099, 1) == 100
    assert domain.points_for_topup(99, 1) == 0
    assert domain.points_for_topup(5000, 3) == 150


def test_signature_covers_every_field_and_matches_the_simulator() -> None:
    fields = {"merchant_trade_no": "t1", "amount_cents": 1000, "status": "success", "paid_at": ""}
    signed = {**fields, "sign": domain.sign(fields, "k")}
    assert signed["sign"] == paysim.sign(fields, "k")  # the provider and the wallet agree
    assert domain.signature_valid(signed, "k")
    assert not domain.signature_valid(signed, "other-secret")
    assert not domain.signature_valid({**signed, "amount_cents": 100000}, "k")
    assert not domain.signature_valid(fields, "k")  # unsigned
    assert domain.canonical(signed) == b"amount_cents=1000&merchant_trade_no=t1&status=success"


def test_spending_report_by_month_and_category() -> None:
    lines = [
        ReportLine(month="2026-10", category_id="game", amount_cents=-3000, kind="payment"),
        ReportLine(month="2026-11", category_id="game", amount_cents=-1000, kind="payment"),
        ReportLine(month="2026-11", category_id="phone", amount_cents=-5000, kind="payment"),
        ReportLine(month="2026-11", category_id="phone", amount_cents=2000, kind="refund"),
    ]
    report = domain.spending_report(lines)
    assert report["total_spent_cents"] == 9000
    assert report["total_refunded_cents"] == 2000
    assert report["net_spent_cents"] == 7000
    assert report["by_category"] == [
        {"category_id": "game", "net_spent_cents": 4000, "share_bp": 5714},
        {"category_id": "phone", "net_spent_cents": 3000, "share_bp": 4285},
    ]
    nov = report["months"][1]
    assert (nov["month"], nov["spent_cents"], nov["refunded_cents"], nov["net_spent_cents"]) == (
        "2026-11",
        6000,
        2000,
        4000,
    )


@pytest.mark.parametrize(
    ("months", "start"),
    [
        (1, datetime(2026, 11, 1, tzinfo=UTC)),
        (2, datetime(2026, 10, 1, tzinfo=UTC)),
        (12, datetime(2025, 12, 1, tzinfo=UTC)),
    ],
)
def test_months_back(months: int, start: datetime) -> None:
    assert domain.months_back(NOW, months) == start


# -- the double-entry builder -----------------------------------------------------------------------


AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_postings_sum_to_zero_and_carry_one_key_per_side() -> None:
    entries = domain.postings(
        "payment",
        "o1",
        debit=domain.Side(name="user", account="u1", fields={"balance_after_cents": 300}),
        credit=domain.Side(name="platform", account=domain.PLATFORM_REVENUE),
        amount_cents=700,
        at=AT,
    )
    by_key = {e["key"]: e for e in entries}
    assert set(by_key) == {"payment:o1:user", "payment:o1:platform"}
    assert (by_key["payment:o1:user"]["account"], by_key["payment:o1:user"]["amount_cents"]) == ("u1", -700)
    assert by_key["payment:o1:user"]["balance_after_cents"] == 300
    assert by_key["payment:o1:platform"]["amount_cents"] == 700
    assert sum(e["amount_cents"] for e in entries) == 0
    assert len({e["txn"] for e in entries}) == 1 and len({e["_id"] for e in entries}) == 2
    assert {(e["kind"], e["ref"], e["at"]) for e in entries} == {("payment", "o1", AT)}


def test_topup_postings_issue_points_in_a_third_entry_that_balances_them() -> None:
    entries = domain.topup_postings("t1", "u1", "alipay", 2550, 50, at=AT, user_fields={"channel": "alipay"})
    by_key = {e["key"]: e for e in entries}
    assert set(by_key) == {"topup:t1:user", "topup:t1:cash", "topup:t1:points"}
    assert by_key["topup:t1:cash"]["account"] == "platform:cash:alipay"
    assert (by_key["topup:t1:user"]["amount_cents"], by_key["topup:t1:user"]["points"]) == (2550, 50)
    assert (by_key["topup:t1:points"]["amount_cents"], by_key["topup:t1:points"]["points"]) == (0, -50)
    assert sum(e["amount_cents"] for e in entries) == 0 and sum(e.get("points", 0) for e in entries) == 0
    # No points earned (under one yuan): no points entry, still balanced.
    small = domain.topup_postings("t2", "u1", "bank", 99, 0, at=AT, user_fields={})
    assert sorted(e["key"] for e in small) == ["topup:t2:cash", "topup:t2:user"]
    assert sum(e["amount_cents"] for e in small) == 0


def test_refund_postings_give_back_from_the_refunds_account() -> None:
    entries = domain.refund_postings("o1", "u1", 400, at=AT, user_fields={"description": "late"})
    assert {(e["key"], e["account"], e["amount_cents"]) for e in entries} == {
        ("refund:o1:user", "u1", 400),
        ("refund:o1:platform", domain.PLATFORM_REFUNDS, -400),
    }


def test_postings_refuse_negative_amounts_and_ambiguous_sides() -> None:
    user, revenue = domain.Side(name="user", account="u1"), domain.Side(name="platform", account="r")
    with pytest.raises(ValueError, match="non-negative"):
        domain.postings("payment", "o1", debit=user, credit=revenue, amount_cents=-1, at=AT)
    with pytest.raises(ValueError, match="distinct"):
        domain.postings("payment", "o1", debit=user, credit=user, amount_cents=1, at=AT)
    with pytest.raises(ValueError, match="issues them"):
        domain.postings("topup", "t1", debit=revenue, credit=user, amount_cents=1, at=AT, points=5)


def test_a_topup_moves_from_pending_only_once() -> None:
    succeeded, failed = domain.TopupStatus.SUCCEEDED, domain.TopupStatus.FAILED
    assert domain.TOPUP.guard(succeeded) == {"status": {"$in": ["pending"]}}
    assert domain.TOPUP.guard(failed) == {"status": {"$in": ["pending"]}}
    assert domain.TOPUP.final() == {succeeded, failed}
    assert not domain.TOPUP.can_move(failed, succeeded)
    # Released when the order ends unpaid (held) or is refunded (consumed).
    assert domain.HOLD.guard(domain.HoldStatus.RELEASED) == {"status": {"$in": ["consumed", "held"]}}
    assert domain.HOLD.final() == {domain.HoldStatus.RELEASED, domain.HoldStatus.REJECTED}


def test_topup_requests_and_provider_answers_are_checked() -> None:
    errors = domain.topup_request_errors(50, "paypal", "", min_cents=100, max_cents=1000)
    assert {e["field"] for e in errors} == {"amount_cents", "channel", "Idempotency-Key"}
    assert domain.topup_request_errors(100, "bank", None, min_cents=100, max_cents=1000) == []
    # The key rule is the shared one (printable ASCII), listed with the other fields' problems.
    assert domain.topup_request_errors(100, "bank", "café", min_cents=100, max_cents=1000) == [
        {"field": "Idempotency-Key", "message": "1 to 200 printable ASCII characters"}
    ]
    topup = {"provider_trade_no": "P1", "amount_cents": 1000}
    assert domain.provider_mismatch(topup, {"provider_trade_no": "P1", "amount_cents": 1000}) is None
    assert domain.provider_mismatch(topup, {"provider_trade_no": "P2", "amount_cents": 1000}) == "trade-mismatch"
    assert domain.provider_mismatch(topup, {"provider_trade_no": "P1", "amount_cents": True}) == "amount-mismatch"
