"""Answers the gateway may keep, and the facts that keep them true (issue 13, Decision 33).

A service that knows what one of its GET answers depends on says so in the `x-kameng-edge-cache`
header: whether the answer varies with the caller's level, and the Redis keys it was computed
from with the values they had when the computation started (the catalog's browse generation;
the stock counters of a product's SKUs). The gateway keeps the answer and, on each later request
for it, reads those keys in the same Redis round trip as its rate limits: while every key still
holds the recorded value, the kept answer is the one the service would give, and it is sent
without a hop; when any moved, the request goes on to the service as always.

The service records each value *before* it reads the data the answer is made of, so a change
racing the read can only make the record older than the answer (a needless miss), never newer
(a stale answer kept as fresh). The header never leaves the gateway.

A refusal may be declared too (Decision 35): the order service's out-of-stock 409 names the
stock counters its hold script refused on, read in that same atomic script.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

HEADER = "x-kameng-edge-cache"


class Validity(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    facts: list[tuple[str, str | None]]
    """(Redis key, the value it held when the answer was computed; None: the key was missing)."""
    vary_level: bool = False
    """The answer differs per caller level (prices); otherwise it is the same for every caller."""
    vary_caller: bool = False
    """The answer is the signed-in caller's own (a rule about the buyer was applied before it)."""
    max_age_seconds: float | None = None
    """How long at most the answer may be kept even while the facts hold: for an answer that also
    rests on something no fact names (the order service's copy of a SKU, refreshed from events)."""


def reading(value: object) -> str | None:
    """A Redis reply as a fact's value: the same text whether the client returned bytes, str or
    an int (INCR's reply), None for a missing key."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def declare(
    facts: Sequence[tuple[str, object]],
    *,
    vary_level: bool = False,
    vary_caller: bool = False,
    max_age_seconds: float | None = None,
) -> dict[str, str]:
    """The response header that lets the gateway keep this answer while `facts` hold."""
    validity = Validity(
        facts=[(key, reading(value)) for key, value in facts],
        vary_level=vary_level,
        vary_caller=vary_caller,
        max_age_seconds=max_age_seconds,
    )
    return {HEADER: msgspec.json.encode(validity).decode()}


def parse(text: str) -> Validity | None:
    """The header's validity; None when it is not one (the answer is then not kept)."""
    try:
        return msgspec.json.decode(text, type=Validity)
    except msgspec.DecodeError:
        return None
