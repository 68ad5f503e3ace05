"""Platform-level events every service understands (operational, not business)."""

from __future__ import annotations

from shared.contracts import topics
from shared.contracts.registry import Event, event


@event("platform.canary", topic=topics.PLATFORM, key="canary_id")
class Canary(Event, frozen=True, kw_only=True):
    """A synthetic event an operator sends to prove the bus works end to end: written to the
    sending service's outbox, relayed to Kafka, and acknowledged by every other service's
    consumer, which records a receipt (see `GET /internal/canary/{id}` on each service)."""

    canary_id: str
    origin: str
    note: str = ""
