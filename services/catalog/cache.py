"""The browse cache: what every visitor reads (the tree, a search page, a product priced for a
level) kept in this process's memory, so a browse costs no database round trip (Decision 24).

Fresh by the catalog's own writes: every use case that changes the catalog is wrapped in
`@changes_catalog`, which empties this process's cache when it returns (also when it failed: a
needless reload is cheap, a stale page is not) and bumps a generation counter in Redis. Other
replicas compare that counter at most every `catalog_cache_check_seconds` and empty theirs when
it moved, so a change shows at once on the replica that made it and within that interval on the
others. An entry also expires after `catalog_cache_max_age_seconds` whatever the counter says,
the backstop for a bump lost with Redis.

A read that raced a change is not kept: each load remembers the cache's epoch when it started
and stores its result only when no change happened meanwhile.

Live values are never cached: the stock state comes from the Redis counters on every request.
Keys are built by `browse_key` only, so a new dimension of what a visitor sees (the sub-site of
`X-Kameng-Site`) becomes part of every key in one place.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

T = TypeVar("T")

GENERATION_KEY = "catalog:browse:generation"
_UNREAD = "unread"
"""Not a value INCR can give: before this replica knew the generation, no edge copy matches."""


class GenerationStore(Protocol):
    """The part of Redis the cache uses (a fake in unit tests)."""

    def get(self, name: str) -> Awaitable[Any]: ...

    def incr(self, name: str) -> Awaitable[Any]: ...


def browse_key(kind: str, *parts: Hashable, site: str | None = None) -> tuple[Hashable, ...]:
    """The one key function of the browse cache: what is read (`tree`, `search`, `product`), its
    arguments, and what the visitor's view depends on (the sub-site, None for the main site)."""
    return (kind, site, *parts)


class BrowseCache:
    def __init__(
        self,
        generations: GenerationStore,
        *,
        check_seconds: float = 1.0,
        max_age_seconds: float = 60.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.generations = generations
        self.check_seconds = check_seconds
        self.max_age = max_age_seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._epoch = 0
        self._generation: bytes | str | int | None = _UNREAD
        self._checked_at = float("-inf")

    async def get(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        """The cached value of `key`, or `load()`'s (kept unless the catalog changed meanwhile).
        A `load` that raises (e.g. 404) keeps nothing."""
        await self._follow_other_replicas()
        now = self.clock()
        found = self._entries.get(key)
        if found is not None and now - found[0] < self.max_age:
            value: T = found[1]
            return value
        epoch = self._epoch
        value = await load()
        if epoch == self._epoch:
            if len(self._entries) >= self.max_entries:
                # Oldest first (insertion order): user-typed searches cannot grow it without bound.
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = (now, value)
        return value

    def generation_fact(self) -> tuple[str, object]:
        """The generation this cache's entries were loaded under, as a fact an answer built from
        them depends on (shared.edge_cache): taken before the read, since a change racing the
        read may only make it older than the answer. It names no generation until this replica
        first read or moved the counter, so no answer is kept at the edge before then."""
        return GENERATION_KEY, self._generation

    async def changed(self) -> None:
        """The catalog changed: forget everything here, and tell the other replicas."""
        self._forget()
        try:
            self._generation = await self.generations.incr(GENERATION_KEY)
        except RedisError as exc:
            log.warning("could not announce a catalog change to the other replicas: %r", exc)

    def _forget(self) -> None:
        self._epoch += 1
        self._entries.clear()

    async def _follow_other_replicas(self) -> None:
        now = self.clock()
        if now - self._checked_at < self.check_seconds:
            return
        self._checked_at = now
        try:
            generation = await self.generations.get(GENERATION_KEY)
        except RedisError as exc:
            # Without the counter a change elsewhere cannot be seen: serve from the database.
            log.warning("catalog generation unreadable, browse cache emptied: %r", exc)
            self._forget()
            self._checked_at = float("-inf")
            return
        if generation != self._generation:
            self._generation = generation
            self._forget()


class HasBrowseCache(Protocol):
    @property
    def browse(self) -> BrowseCache: ...


D = TypeVar("D", bound=HasBrowseCache)
P = ParamSpec("P")
R = TypeVar("R")


def changes_catalog(fn: Callable[Concatenate[D, P], Awaitable[R]]) -> Callable[Concatenate[D, P], Awaitable[R]]:
    """Marks a use case that writes the catalog (its first argument is the deps): the browse
    cache is emptied when it returns or fails, before the caller gets the answer."""

    @functools.wraps(fn)
    async def wrapper(deps: D, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(deps, *args, **kwargs)
        finally:
            await deps.browse.changed()

    return wrapper
