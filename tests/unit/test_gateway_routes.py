from __future__ import annotations

import re

import pytest

from services.gateway import public, routes
from services.gateway.routes import owner_of


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("auth/login", "identity"),
        ("me", "identity"),
        ("me/api-keys/k1", "identity"),
        ("admin/users/u1/level", "identity"),
        ("catalog/tree", "catalog"),
        ("catalog/products/p1", "catalog"),
        ("admin/products", "catalog"),
        ("admin/skus/s1", "catalog"),
        ("admin/skus/s1/card-keys", "fulfilment"),
        ("admin/skus/s1/stock", "fulfilment"),
        ("orders/o1/card-keys", "fulfilment"),
        ("suppliers/sim/notify", "fulfilment"),
        ("admin/manual-tasks/t1/complete", "fulfilment"),
        ("wallet", "wallet"),
        ("wallet/topups/t1", "wallet"),
        ("payments/notify/alipay", "wallet"),
        ("orders", "order"),
        ("orders/quote", "order"),
        ("orders/o1/cancel", "order"),
        ("orders/batch", "order"),
        ("tickets/t1/messages", "support"),
        ("announcements", "support"),
        ("help/articles", "support"),
        ("partner/webhooks", "support"),
        ("admin/tickets/t1/resolve", "support"),
        ("admin/urges", "support"),
        ("admin/urges/o1/handle", "support"),
        ("admin/webhook-deliveries/d1/replay", "support"),
        ("admin/help/articles/a1", "support"),
        ("notifications/n1/read", "support"),
    ],
)
def test_owner(path: str, service: str) -> None:
    assert owner_of(path) == service


@pytest.mark.parametrize("path", ["", "nope", "ordersx", "admin", "catalogue/tree"])
def test_no_owner(path: str) -> None:
    assert owner_of(path) is None


def test_the_one_pattern_answers_as_the_tables_read_in_order_would() -> None:
    """`owner_of` and `is_public` match each table as one alternation; the first route of the
    table that matches the whole path (a trailing slash allowed) must still be the answer."""
    samples = ["", "x", "auth/register/", "sites/a/", "sites/a/b", "payments/notify/p1/", "suppliers/s/notify"]
    for pattern, _ in routes.ROUTES:
        stem = pattern.split("(")[0]
        samples += [stem, f"{stem}/", f"{stem}/x", f"{stem}/x/y/", f"admin/{stem}", f"{stem}x"]
    for path in samples:
        first = next((s for p, s in routes.ROUTES if re.fullmatch(p + "/?", path)), None)
        assert routes.owner_of(path) == first, path
        for method in ("GET", "POST", "PUT"):
            expected = any(method in ms and re.fullmatch(p + "/?", path) for ms, p in public.PUBLIC_ROUTES)
            assert public.is_public(method, path) == expected, (method, path)
