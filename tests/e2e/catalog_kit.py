"""Building a catalog through the gateway for the e2e tests (as an admin would)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers import auth

ADMIN = auth(roles=("admin", "staff"))


def create(gateway: httpx.Client, path: str, body: dict[str, Any]) -> str:
    r = gateway.post(f"/api/v1/admin/{path}", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    (value,) = r.json().values()
    return str(value)


def tree_path(gateway: httpx.Client, scenario: str, category: str) -> tuple[str, str]:
    scenario_id = create(gateway, "scenarios", {"name": scenario})
    category_id = create(gateway, "categories", {"scenario_id": scenario_id, "name": category})
    return scenario_id, category_id


def product(gateway: httpx.Client, category_id: str, name: str, **extra: Any) -> str:
    return create(gateway, "products", {"category_id": category_id, "name": name, **extra})


def sku(gateway: httpx.Client, product_id: str, **overrides: Any) -> str:
    body: dict[str, Any] = {
        "name": "100 元",
        "face_value_cents": 10000,
        "prices": {"retail": 9900},
        "delivery_mode": "auto",
        "validity_days": 365,
        "on_sale": True,
        **overrides,
    }
    return create(gateway, f"products/{product_id}/skus", body)
