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

_COMPILED = [(methods, re.compile(pattern + r"/?")) for methods, pattern in PUBLIC_ROUTES]


def is_public(method: str, path: str) -> bool:
    method = method.upper()
    return any(method in methods and pattern.fullmatch(path) for methods, pattern in _COMPILED)
