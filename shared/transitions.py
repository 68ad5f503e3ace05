"""A state machine as data: which status may follow which. Every aggregate with a lifecycle
(orders, deliveries, card keys, tickets, top-ups) declares one `Transitions` table in its
service's `domain.py`; its store turns the table into guarded updates:

    TICKET = Transitions({Status.OPEN: {Status.ANSWERED, Status.RESOLVED}, ...})
    await col.update_one({"_id": id, **TICKET.guard(Status.RESOLVED)}, {"$set": {"status": ...}})

so a change that does not fit the current status matches nothing and changes nothing: the same
rule for an HTTP request, a redelivered event and a race between two workers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Generic, TypeVar

S = TypeVar("S", bound=StrEnum)


class Transitions(Generic[S]):
    def __init__(self, table: Mapping[S, Iterable[S]], *, field: str = "status") -> None:
        self.table: dict[S, frozenset[S]] = {state: frozenset(nexts) for state, nexts in table.items()}
        self.field = field
        targets = {t for nexts in self.table.values() for t in nexts}
        unknown = targets - set(self.table)
        if unknown:
            raise ValueError(f"states without a row: {sorted(unknown)}")
        self._sources: dict[S, list[str]] = {
            target: sorted(s.value for s, nexts in self.table.items() if target in nexts) for target in self.table
        }

    def can_move(self, current: S, target: S) -> bool:
        return target in self.table[current]

    def sources(self, target: S) -> list[str]:
        """The statuses `target` may follow (as stored strings)."""
        return self._sources[target]

    def guard(self, target: S) -> dict[str, Any]:
        """A MongoDB filter fragment that matches only documents allowed to move to `target`."""
        return {self.field: {"$in": self.sources(target)}}

    def final(self) -> frozenset[S]:
        """Statuses nothing follows."""
        return frozenset(s for s, nexts in self.table.items() if not nexts)
