"""Settings of the assistant service (environment variables; see docs/assistant.md)."""

from __future__ import annotations

from typing import ClassVar

from shared.config import ServiceSettings


class AssistantSettings(ServiceSettings):
    service_name: ClassVar[str] = "assistant"

    index_poll_seconds: float = 0.5
    """How often each replica applies the store's content changes (written by the content event
    handlers, on whichever replica consumed them) to its in-memory index."""

    answer_threshold: float = 0.45
    """Below this confidence the assistant says it is not sure and offers a ticket."""
    urge_wait_minutes: float = 15.0
    """The order service's rule: an order can be urged this long after payment or the last urge."""
