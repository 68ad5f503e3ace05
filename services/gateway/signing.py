"""The partner request signature (api.md): hex HMAC-SHA256, keyed by the API key's secret, of

    METHOD \\n PATH \\n TIMESTAMP \\n NONCE \\n hex(SHA-256(body))

PATH is the request path (`/api/v1/orders`, as sent or decoded). A signature over the path with its query string
(`/api/v1/orders?page=2`) is accepted too, so a partner may choose to protect its query. The
timestamp is Unix seconds and must be within `max_skew` of the gateway's clock (either way: a
future stamp would outlive the nonce memory); the nonce is 8-128 URL-safe characters. Pure.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

NONCE = re.compile(r"[A-Za-z0-9_\-]{8,128}")
SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")


def canonical_string(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{digest}".encode()


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    return hmac.new(secret.encode(), canonical_string(method, path, timestamp, nonce, body), hashlib.sha256).hexdigest()


def signature_matches(
    secret: str, signature: str, *, method: str, paths: Iterable[str], timestamp: str, nonce: str, body: bytes
) -> bool:
    if not SIGNATURE.fullmatch(signature):
        return False
    given = signature.lower()
    # Every candidate is computed and compared, so timing does not tell which form matched.
    results = [hmac.compare_digest(sign(secret, method, p, timestamp, nonce, body), given) for p in paths]
    return any(results)


def timestamp_problem(raw: str, *, now: float, max_skew_seconds: int) -> str | None:
    if not raw.isdigit() or len(raw) > 12:
        return "X-Timestamp must be Unix time in seconds"
    skew = int(raw) - now
    if skew < -max_skew_seconds:
        return f"X-Timestamp is older than {max_skew_seconds} s"
    if skew > max_skew_seconds:
        return f"X-Timestamp is more than {max_skew_seconds} s in the future"
    return None


def nonce_problem(raw: str) -> str | None:
    return None if NONCE.fullmatch(raw) else "X-Nonce must be 8 to 128 letters, digits, '-' or '_'"
