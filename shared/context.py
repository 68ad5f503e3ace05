"""Per-request / per-event context that flows into every event written to the outbox.

`correlation_id` ties together everything one outside request caused (it is the gateway's
X-Request-Id); `causation_id` is the event that directly caused the current work.
"""

from __future__ import annotations

from contextvars import ContextVar

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
causation_id: ContextVar[str | None] = ContextVar("causation_id", default=None)
