"""Which service owns which public path. First match wins; one table, read top to bottom.

Paths are matched without the `/api/v1/` prefix. The owning service serves the same public
path itself, so the gateway forwards the path unchanged.
"""

from __future__ import annotations

import re

ROUTES: list[tuple[str, str]] = [
    # The card-key vault and the manual queue live in fulfilment (it owns the secrets).
    (r"admin/skus/[^/]+/(card-keys|stock)(/.*)?", "fulfilment"),
    (r"admin/manual-tasks(/.*)?", "fulfilment"),
    (r"orders/[^/]+/card-keys", "fulfilment"),
    (r"suppliers/[^/]+/notify", "fulfilment"),
    # identity
    (r"(auth|me)(/.*)?", "identity"),
    (r"admin/users(/.*)?", "identity"),
    # catalog
    (r"catalog(/.*)?", "catalog"),
    (r"admin/(scenarios|categories|products|skus)(/.*)?", "catalog"),
    # wallet
    (r"(wallet|payments)(/.*)?", "wallet"),
    (r"admin/(topups|coupons|wallets)(/.*)?", "wallet"),
    # order
    (r"orders(/.*)?", "order"),
    (r"admin/orders(/.*)?", "order"),
    # support
    (r"(tickets|announcements|help|partner|notifications)(/.*)?", "support"),
    (r"admin/(tickets|announcements|help|urges|webhook-deliveries)(/.*)?", "support"),
]

_COMPILED = [(re.compile(pattern + r"/?"), service) for pattern, service in ROUTES]


def owner_of(path: str) -> str | None:
    """`owner_of("orders/123")` -> "order"; None when no service serves the path."""
    for pattern, service in _COMPILED:
        if pattern.fullmatch(path):
            return service
    return None
