"""Answers the gateway keeps: the catalog reads every visitor makes (the tree, a search page, a
product priced for a level), sent again without a hop while the facts they were computed from
stand (shared.edge_cache, Decision 33).

The catalog declares each such answer's facts (its browse generation, the stock counters of the
product's SKUs) with the values they had. A later request for the same path and query reads
those keys in the edge's one Redis round trip, beside the rate limits and token checks it makes
anyway: when every value is unchanged, the kept answer is sent; when one moved (an admin edited
the catalog, a key was sold or imported), the request goes to the catalog as before and its new
answer is kept. So a kept answer is never older than the facts in Redis, on every gateway
replica, with no extra round trip; `max_age_seconds` only bounds the case of a change whose
counter bump Redis lost.

Not kept: a request on a sub-site (`X-Kameng-Site`: the site's prices are read as they are now),
a partner's signed request, any answer but a 200 with the catalog's declaration.

Refusals, too (Decision 35): the order service declares an out-of-stock 409 with the stock
counters its hold script refused on, so a flash sale's sold-out retries are answered here while
those counters read the same. A kept refusal is looked up by the request's body as well as its
path (`digest`), for every caller or for the one it was made for (`vary_caller`: when a rule about
the buyer came before the stock), and only for a refusal: a 4xx of a method other than GET, never
an answer that made something.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from services.gateway.domain import Command
from shared import edge_cache
from shared.sites import SITE_HEADER

ANSWERS = Counter(
    "kameng_gateway_kept_answers_total",
    "Requests for answers the gateway keeps, by outcome (hit: sent from the gateway; miss: forwarded)",
    ["outcome"],
)
_HIT, _MISS = ANSWERS.labels("hit"), ANSWERS.labels("miss")

_ANY = "*"
"""The variant part of the key of an answer that is the same for every caller."""

REFUSABLE = frozenset({("POST", "order", "orders")})
"""(method, service, path) whose refusals may be kept: placing an order (Decision 35)."""

MAX_BODY_BYTES = 256 * 1024
"""A larger answer is not kept (a search page is a few KB)."""


def _level_variant(level: str | None) -> str:
    return "level:" + (level or "")


def _caller_variant(user_id: str) -> str:
    return "caller:" + user_id


def digest(body: bytes) -> str:
    """What a kept refusal is looked up by besides its path: the request's body ("" for none)."""
    return hashlib.blake2b(body, digest_size=16).hexdigest() if body else ""


@dataclass(frozen=True)
class Kept:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    facts: tuple[tuple[str, str | None], ...]
    level: str | None
    """The level of the caller it was made for (None: anonymous); compared when `vary_level`."""
    vary_level: bool
    stored_at: float
    max_age: float
    reads: tuple[Command, ...] = ()
    """The commands that read `facts` now (`fact_reads`), made once when the answer is kept."""


def hash_tag(key: str) -> str | None:
    """The part of a key Redis Cluster places it by (`{...}`), None when it has none."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start + 1 : end] if end > start + 1 else None


def fact_reads(keys: Sequence[str]) -> tuple[Command, ...]:
    """The reads of `keys`, in order: one MGET for neighbouring keys of one hash tag (a SKU's
    stock counters sit in one slot, so this holds on a cluster too), a GET for any other."""
    reads: list[Command] = []
    i = 0
    while i < len(keys):
        tag, j = hash_tag(keys[i]), i + 1
        while tag is not None and j < len(keys) and hash_tag(keys[j]) == tag:
            j += 1
        reads.append(("MGET", *keys[i:j]) if j - i > 1 else ("GET", keys[i]))
        i = j
    return tuple(reads)


def flat(replies: Sequence[Any], reads: Sequence[Command]) -> list[Any]:
    """The value of each key, in order, from the replies to `fact_reads`."""
    values: list[Any] = []
    for reply, command in zip(replies, reads, strict=True):
        if command[0] == "MGET":
            values.extend(reply)
        else:
            values.append(reply)
    return values


@dataclass(frozen=True)
class Lookup:
    """One request's look at what is kept: the answer it may use and the Redis reads deciding it."""

    key: tuple[str, str, str]
    """(path, query, body digest)."""
    user_id: str | None = None
    """The caller the request's token names (None: anonymous)."""
    entry: Kept | None = None

    @property
    def reads(self) -> tuple[Command, ...]:
        return self.entry.reads if self.entry is not None else ()


class KeptAnswers:
    def __init__(
        self,
        *,
        owners: Sequence[str] = ("catalog",),
        max_entries: int = 4096,
        max_age_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.owners = frozenset(owners)
        self.max_entries = max_entries
        self.max_age = max_age_seconds
        self.clock = clock
        self._entries: dict[tuple[str, str, str, str], Kept] = {}

    def candidate(self, method: str, service: str, relative: str, headers: Mapping[str, str]) -> bool:
        """Whether the request may be answered from, or fill, what is kept."""
        return (
            ((method == "GET" and service in self.owners) or (method, service, relative) in REFUSABLE)
            and not (headers.get(SITE_HEADER) or "").strip()
            and not headers.get("x-api-key")
        )

    def lookup(self, relative: str, query: str, body: bytes, level: str | None, user_id: str | None) -> Lookup:
        """The kept answer for this path, query and body (for `level` or the caller when it varies
        with them), and the reads of its facts for the edge's round trip."""
        key = (relative, query, digest(body))
        entries = self._entries
        found = entries.get((*key, _ANY)) or entries.get((*key, _level_variant(level)))
        if found is None and user_id is not None:
            found = entries.get((*key, _caller_variant(user_id)))
        if found is None or self.clock() - found.stored_at >= found.max_age:
            return Lookup(key, user_id)
        return Lookup(key, user_id, found)

    def answer(self, lookup: Lookup, read: Sequence[Any] | None, level: str | None) -> Kept | None:
        """The kept answer when its facts still hold (`read`: their values now, in order) for
        the caller as admitted (`level`: after an admin's change of it)."""
        entry = lookup.entry
        fresh = (
            entry is not None
            and read is not None
            and (not entry.vary_level or entry.level == level)
            and all(
                edge_cache.reading(now) == then
                for now, (_, then) in zip(flat(read, entry.reads), entry.facts, strict=True)
            )
        )
        (_HIT if fresh else _MISS).inc()
        return entry if fresh else None

    def keep(
        self,
        lookup: Lookup,
        method: str,
        level: str | None,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        declared: str,
    ) -> None:
        """Keep the service's answer when it declared the facts it holds under: a GET's 200, or
        a refusal (a 4xx but 429: nothing was made, and a rate limit is the edge's own)."""
        validity = edge_cache.parse(declared) if declared else None
        keepable = status == 200 if method == "GET" else 400 <= status < 500 and status != 429
        if not keepable or validity is None or len(body) > MAX_BODY_BYTES:
            return
        if validity.vary_caller and lookup.user_id is None:
            return
        if validity.vary_caller:
            variant = _caller_variant(lookup.user_id or "")
        elif validity.vary_level:
            variant = _level_variant(level)
        else:
            variant = _ANY
        key = (*lookup.key, variant)
        if key not in self._entries and len(self._entries) >= self.max_entries:
            # Oldest first (insertion order): typed searches cannot grow it without bound.
            self._entries.pop(next(iter(self._entries)))
        max_age = self.max_age if validity.max_age_seconds is None else min(self.max_age, validity.max_age_seconds)
        self._entries[key] = Kept(
            status=status,
            headers=headers,
            body=body,
            facts=tuple(validity.facts),
            level=level,
            vary_level=validity.vary_level,
            stored_at=self.clock(),
            max_age=max_age,
            reads=fact_reads([key for key, _ in validity.facts]),
        )
