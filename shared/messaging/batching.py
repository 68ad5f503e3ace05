"""Which events of a polled batch a consumer applies: pure rules, no I/O (Decision 31).

A poll returns records in partition order, so one aggregate's events (one key, one partition)
arrive in the order they were published. The batch keeps that order; an event whose inbox id
was applied before, or appears a second time in the same batch, is skipped, never re-applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Planned(Generic[T]):
    apply: list[T]
    """In arrival order: the first occurrence of each inbox id not applied before."""
    duplicates: list[T]
    """Redeliveries: applied before, or a second copy within the batch."""


def plan(items: Sequence[T], ids: Sequence[str], fresh: Iterable[str]) -> Planned[T]:
    """Split `items` (with their inbox `ids`, same order) given the ids the inbox did not hold."""
    unclaimed = set(fresh)
    apply: list[T] = []
    duplicates: list[T] = []
    for item, key in zip(items, ids, strict=True):
        if key in unclaimed:
            unclaimed.discard(key)
            apply.append(item)
        else:
            duplicates.append(item)
    return Planned(apply=apply, duplicates=duplicates)


def batches_enabled(max_records: int) -> bool:
    """1 keeps the old shape: one record per poll, one transaction per record."""
    return max_records > 1
