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

# The table as one alternation, each route a named group: regex alternation tries them in table
# order, so the first route that matches the whole path names the owner, as a loop would, in one
# match per request.
_SERVICES = {f"r{i}": service for i, (_, service) in enumerate(ROUTES)}
_ALL = re.compile("|".join(f"(?P<r{i}>{pattern}/?)" for i, (pattern, _) in enumerate(ROUTES)))


def owner_of(path: str) -> str | None:
    """`owner_of("orders/123")` -> "order"; None when no service serves the path."""
    match = _ALL.fullmatch(path)
    return _SERVICES[match.lastgroup] if match is not None and match.lastgroup else None
