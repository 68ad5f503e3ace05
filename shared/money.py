"""Money is integer cents (分) everywhere: in code, in MongoDB, on the bus and over HTTP.

Floats never touch money. Conversions from/to yuan strings go through Decimal; rates are basis
points (1 bp = 0.01 %), and rounding is half-up to the cent, the way receipts are read.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated

import msgspec

Cents = Annotated[int, msgspec.Meta(ge=0, le=10**13, description="amount in integer cents (分)")]
"""A non-negative amount of money in cents, for schemas (msgspec validates the bounds)."""

SignedCents = Annotated[int, msgspec.Meta(ge=-(10**13), le=10**13, description="signed cents")]

_CENT = Decimal("0.01")


class MoneyError(ValueError):
    pass


def parse_yuan(text: str) -> int:
    """'12.5' -> 1250. Rejects more than two decimals, signs and non-numbers."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise MoneyError(f"not an amount: {text!r}") from exc
    if not value.is_finite() or value < 0:
        raise MoneyError(f"not a non-negative amount: {text!r}")
    if value != value.quantize(_CENT):
        raise MoneyError(f"more than two decimals: {text!r}")
    return int(value * 100)


def format_yuan(cents: int) -> str:
    """1250 -> '12.50'; -5 -> '-0.05'."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


def format_price(cents: int) -> str:
    """1250 -> '¥12.50': how people read a price (notifications, emails, pages)."""
    return "¥" + format_yuan(cents)


def apply_rate(cents: int, basis_points: int) -> int:
    """cents * rate, rounded half-up to the cent. apply_rate(999, 9500) == 949 (95 % of 9.99)."""
    if basis_points < 0:
        raise MoneyError("rate must not be negative")
    return int((Decimal(cents) * basis_points / 10000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split `total` cents in proportion to `weights`, so the parts sum exactly to `total`
    (largest-remainder method): e.g. spreading one order's discount across its lines."""
    if not weights or any(w < 0 for w in weights) or sum(weights) == 0:
        raise MoneyError("weights must be non-negative and not all zero")
    weight_sum = sum(weights)
    parts = [total * w // weight_sum for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (total * weights[i]) % weight_sum, reverse=True)
    for i in remainders[: total - sum(parts)]:
        parts[i] += 1
    return parts
