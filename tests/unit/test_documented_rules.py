"""The rules the OpenAPI document states (Decision 30) agree with the checks the use cases make:
every value a stated pattern calls valid passes the check, and a sample of what it calls invalid
is refused. The fuzzer finds the same disagreements against the running platform, one slow run
at a time; these find them in milliseconds."""

from __future__ import annotations

import re
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from services.identity.domain import (
    EMAIL_PATTERN,
    ID_NUMBER_PATTERN,
    LOGIN_PATTERN,
    MOBILE_PATTERN,
    REAL_NAME_PATTERN,
    id_number_check,
    id_number_form_problem,
    id_number_problem,
    input_problem,
    normalize_email,
    normalize_phone,
    real_name_problem,
)
from services.order.domain import STATUS_LIST_PATTERN, Status, status_filter
from services.support.domain import WEBHOOK_URL_PATTERN, check_webhook
from shared.errors import unknown_reference
from shared.idempotency import KEY_PATTERN, valid_key

FAST = settings(max_examples=300, deadline=None)


@FAST
@given(st.from_regex(EMAIL_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 254))
def test_every_documented_email_is_accepted(email: str) -> None:
    assert normalize_email(email) is not None


@FAST
@given(st.from_regex(MOBILE_PATTERN, fullmatch=True))
def test_every_documented_mobile_number_is_accepted(phone: str) -> None:
    normal = normalize_phone(phone)
    assert normal is not None and re.fullmatch(r"1[3-9][0-9]{9}", normal)


@FAST
@given(st.from_regex(LOGIN_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 254))
def test_every_documented_login_is_an_email_or_a_mobile_number(login: str) -> None:
    assert (normalize_email(login) or normalize_phone(login)) is not None


def test_digits_of_other_scripts_are_not_a_mobile_number() -> None:
    # Python's \d matches ١٣٨ too; the rule (and the document) mean ASCII digits.
    assert normalize_phone("1٣8" + "0" * 8) is None
    assert normalize_phone("+86 138-0000-0000") == "13800000000"


@FAST
@given(st.from_regex(REAL_NAME_PATTERN, fullmatch=True))
def test_every_documented_real_name_is_accepted(name: str) -> None:
    assert real_name_problem(name) is None


@FAST
@given(st.from_regex(ID_NUMBER_PATTERN, fullmatch=True))
def test_a_documented_id_number_fails_only_the_arithmetic(number: str) -> None:
    assert id_number_form_problem(number) is None
    # What remains is the check the document cannot state: a real past date, the check digit.
    assert id_number_problem(number, today=date(2026, 11, 30)) == id_number_check(number, today=date(2026, 11, 30))


def test_id_number_shape_and_arithmetic_are_told_apart() -> None:
    today = date(2026, 11, 30)
    assert id_number_form_problem("1101051949123100") == "must be 17 digits followed by a digit or X"
    assert id_number_form_problem("99010519491231002X") == "the region code is not valid"
    assert id_number_form_problem("11010519491331002X") == "the birth date is not a real date"  # month 13
    assert id_number_form_problem("110105194912310021") is None
    assert id_number_check("110105194912310021", today=today) == "the check digit does not match (GB 11643)"
    assert id_number_check("110105194902300021", today=today) == "the birth date is not a real date"  # 30 Feb
    assert id_number_problem("11010519491231002X", today=today) is None


@FAST
@given(st.from_regex(STATUS_LIST_PATTERN, fullmatch=True))
def test_every_documented_status_list_is_accepted(statuses: str) -> None:
    wanted, errors = status_filter(statuses, None)
    assert errors == [] and wanted


def test_an_empty_status_in_the_list_is_refused() -> None:
    for bad in ("", "paid,", ",paid", "paid,,delivered"):
        assert status_filter(bad, None)[1], bad
    assert status_filter(" paid , delivered ", None) == ([Status.PAID.value, Status.DELIVERED.value], [])


@FAST
@given(st.from_regex(WEBHOOK_URL_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 2000))
def test_every_documented_webhook_url_is_accepted_in_development(url: str) -> None:
    assert check_webhook(url, ["order.paid"], require_https=False) == []


@FAST
@given(st.from_regex(KEY_PATTERN, fullmatch=True))
def test_every_documented_idempotency_key_is_accepted(key: str) -> None:
    assert valid_key(key)


def test_idempotency_keys_are_printable_ascii() -> None:
    assert valid_key("order-2026-11-30-0001")
    assert not valid_key("")
    assert not valid_key("x" * 201)
    assert not valid_key("café")
    assert not valid_key("a\tb")


def test_a_weak_password_alone_has_its_own_slug() -> None:
    weak = input_problem([{"field": "password", "message": "is too common"}])
    assert weak.slug == "weak-password" and weak.status_code == 422
    mixed = input_problem(
        [
            {"field": "password", "message": "is too common"},
            {"field": "email", "message": "is not a valid email address"},
        ]
    )
    assert mixed.slug == "validation-error"


def test_an_unknown_reference_keeps_the_field_errors_shape() -> None:
    problem = unknown_reference([{"field": "sku_id", "message": "no such product"}])
    assert problem.slug == "unknown-reference" and problem.status_code == 422
    assert problem.extra == {"errors": [{"field": "sku_id", "message": "no such product"}]}
    assert problem.detail == "no such product"
