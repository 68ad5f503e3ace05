"""Which /api/v1 routes answer without a signed-in caller (a bearer token still counts when one is
sent: catalog prices depend on the caller's level). Everything else needs a bearer token or a
partner signature at the gateway. Pure; paths are matched without the `/api/v1/` prefix."""

from __future__ import annotations

import re

PUBLIC_ROUTES: list[tuple[frozenset[str], str]] = [
    (frozenset({"POST"}), r"auth/(register|login|refresh|password-reset|password-reset/confirm)"),
    (frozenset({"GET"}), r"catalog(/.*)?"),
    (frozenset({"GET"}), r"sites/[^/]+"),
    (frozenset({"GET"}), r"announcements(/.*)?"),
    (frozenset({"GET"}), r"help(/.*)?"),
    # The smart assistant answers anonymous callers from the help center (orders need a token).
    (frozenset({"POST"}), r"assistant/ask"),
    # The payment provider's notification: it authenticates with its own signature (wallet checks it).
    (frozenset({"GET", "POST"}), r"payments/notify/[^/]+"),
    # A direct top-up supplier's result callback: signed by the supplier (fulfilment checks it).
    (frozenset({"POST"}), r"suppliers/[^/]+/notify"),
]

# One pattern per method (the routes' alternation): checked on every anonymous request, where a
# loop over the table was a measurable share of the gateway's time (issue 13).
_BY_METHOD = {
    method: re.compile("(?:" + "|".join(f"(?:{p})" for methods, p in PUBLIC_ROUTES if method in methods) + ")/?")
    for method in {m for methods, _ in PUBLIC_ROUTES for m in methods}
}


def is_public(method: str, path: str) -> bool:
    pattern = _BY_METHOD.get(method.upper())
    return pattern is not None and pattern.fullmatch(path) is not None
