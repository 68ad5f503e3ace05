from __future__ import annotations

import pytest

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
