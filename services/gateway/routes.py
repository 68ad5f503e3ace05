"""Which service owns which public path. First match wins; one table, read top to bottom.

Paths are matched without the `/api/v1/` prefix. The owning service serves the same public
path itself, so the gateway forwards the path unchanged.
"""

from __future__ import annotations

import re

ROUTES: list[tuple[str, str]] = [
    # The card-key vault and the manual queue live in fulfilment (it owns the secrets).
    (r"admin/skus/[^/]+/(card-keys|card-key-batches|stock)(/.*)?", "fulfilment"),
    (r"admin/(card-key-imports|card-key-batches)/[^/]+(/disable)?", "fulfilment"),
    (r"admin/manual-tasks(/.*)?", "fulfilment"),
    (r"orders/[^/]+/card-keys", "fulfilment"),
    (r"suppliers/[^/]+/notify", "fulfilment"),
    # agents and sub-sites (代理 / 分站): applications in identity, the site in catalog, the
    # commissions and withdrawals in wallet, the sub-site's orders in order
    (r"agent/application", "identity"),
    (r"admin/agent-applications(/.*)?", "identity"),
    (r"(agent/site|sites/[^/]+)", "catalog"),
    (r"agent/(commissions|withdrawals)(/.*)?", "wallet"),
    (r"admin/withdrawals(/.*)?", "wallet"),
    (r"agent/orders(/.*)?", "order"),
    # The catalog keeps a buyer's shortcuts: it owns what they point at.
    (r"me/shortcuts", "catalog"),
    # identity
    (r"(auth|me)(/.*)?", "identity"),
    (r"admin/users(/.*)?", "identity"),
    (r"admin/real-name/reviews(/.*)?", "identity"),
    # catalog
    (r"catalog(/.*)?", "catalog"),
    (r"admin/(scenarios|categories|products|skus)(/.*)?", "catalog"),
    # wallet
    (r"(wallet|payments)(/.*)?", "wallet"),
    (r"admin/(topups|coupons|wallets)(/.*)?", "wallet"),
    # order
    (r"orders(/.*)?", "order"),
    (r"subscriptions(/.*)?", "order"),
    (r"admin/orders(/.*)?", "order"),
    # support
    (r"(tickets|announcements|help|partner|notifications)(/.*)?", "support"),
    (r"admin/(tickets|announcements|help|urges|webhook-deliveries)(/.*)?", "support"),
    # assistant (智能客服)
    (r"assistant(/.*)?", "assistant"),
]

_COMPILED = [(re.compile(pattern + r"/?"), service) for pattern, service in ROUTES]


def owner_of(path: str) -> str | None:
    """`owner_of("orders/123")` -> "order"; None when no service serves the path."""
    for pattern, service in _COMPILED:
        if pattern.fullmatch(path):
            return service
    return None
