"""The identity service's Kafka event handlers (each runs in a transaction with the inbox)."""

from __future__ import annotations

from shared.messaging.consumer import EventRouter

router = EventRouter("identity")
