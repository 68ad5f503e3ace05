"""The edge's rule for path ids: a path no service could have issued is 404 before forwarding."""

from __future__ import annotations

import pytest

from services.gateway.domain import allowed_methods, bad_path


@pytest.mark.parametrize(
    "relative",
    [
        "orders",
        "orders/",
        "orders/0123abcdef/cancel",
        "admin/skus/sku_01-2.x/card-keys",
        "payments/alipay/notify",
        "admin/coupons/NEW-YEAR:2026",
    ],
)
def test_ids_the_services_issue_pass(relative: str) -> None:
    assert bad_path(relative) is None


@pytest.mark.parametrize(
    "relative",
    [
        "orders//cancel",  # an empty id
        "orders/\x00",
        "orders/a\nb",
        "tickets/工单",
        "tickets/é",
        "orders/a b",
        "orders/a%2Fb",
        "orders/a?b",
        "orders/a#b",
        "orders/../admin/orders",
        "orders/.",
        "orders/" + "x" * 201,
    ],
)
def test_ids_no_service_issues_are_refused(relative: str) -> None:
    assert bad_path(relative) is not None


def test_every_operation_lists_the_edges_problems_and_keeps_its_own() -> None:
    from services.gateway.domain import with_edge_problems

    doc = {
        "paths": {
            "/api/v1/orders/{order_id}": {
                "get": {"responses": {"200": {"description": "ok"}, "404": {"description": "no such order"}}},
                "post": {"responses": {"200": {"description": "ok"}}},
                "parameters": [],
            }
        }
    }
    out = with_edge_problems(doc)
    responses = out["paths"]["/api/v1/orders/{order_id}"]["get"]["responses"]
    assert {"200", "401", "404", "422", "429", "503", "504"} <= set(responses) and "409" not in responses
    assert "409" in out["paths"]["/api/v1/orders/{order_id}"]["post"]["responses"]  # a write may conflict
    assert responses["404"] == {"description": "no such order"}  # the service's own stays
    assert "application/problem+json" in responses["503"]["content"]
    assert "Problem" in out["components"]["schemas"] and "components" not in doc  # input untouched


def test_allow_lists_the_documented_methods_of_the_matching_template() -> None:
    paths = {
        "/api/v1/orders": {"get": {}, "post": {}},
        "/api/v1/orders/{order_id}": {"get": {}, "parameters": []},
        "/api/v1/orders/quote": {"post": {}},
        "/api/v1/orders/{order_id}/cancel": {"post": {}},
    }
    assert allowed_methods(paths, "/api/v1/orders") == ["GET", "POST", "OPTIONS"]
    assert allowed_methods(paths, "/api/v1/orders/abc123") == ["GET", "OPTIONS"]
    assert allowed_methods(paths, "/api/v1/orders/quote") == ["POST", "OPTIONS"]  # literal wins
    assert allowed_methods(paths, "/api/v1/orders/abc/cancel") == ["POST", "OPTIONS"]
    assert allowed_methods(paths, "/api/v1/orders//cancel") is None
    assert allowed_methods(paths, "/api/v1/nothing") is None
