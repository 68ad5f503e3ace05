"""Adapter to the Kafka admin API: creates partners' feed topics (one per partner account)."""

from __future__ import annotations

from services.support.settings import SupportSettings
from shared.messaging.broker import ensure_topics


class FeedTopics:
    """Makes sure a partner's topic exists before anything is written for it. Creating is
    idempotent; topics known to exist are remembered, so the broker is asked once per topic and
    process, not once per event."""

    def __init__(self, settings: SupportSettings) -> None:
        self.settings = settings
        self._known: set[str] = set()

    async def ensure(self, topic: str) -> None:
        if topic in self._known:
            return
        await ensure_topics(
            self.settings.kafka_bootstrap_servers,
            [topic],
            partitions=self.settings.kafka_topic_partitions,
            replication_factor=self.settings.kafka_replication_factor,
        )
        self._known.add(topic)
