"""FastStream Kafka broker factory and topic bootstrap."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from shared.config import ServiceSettings

log = logging.getLogger(__name__)


def create_broker(
    settings: ServiceSettings,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> KafkaBroker:
    """A KafkaBroker whose every publish and consume is traced (context crosses in headers)."""
    acks: int | str = "all" if settings.kafka_acks == "all" else int(settings.kafka_acks)
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"kameng-{settings.service_name}",
        acks=acks,  # type: ignore[arg-type]
        enable_idempotence=settings.kafka_enable_idempotence,
        request_timeout_ms=15000,
        middlewares=[KafkaTelemetryMiddleware(tracer_provider=tracer_provider, meter_provider=meter_provider)],
        logger=logging.getLogger("faststream"),  # our handlers and format, not FastStream's own
        # FastStream logs every message at this level; per-message lines are debug noise.
        log_level=logging.DEBUG,
        graceful_timeout=15.0,
    )


async def ensure_topics(
    bootstrap_servers: str, topics: Iterable[str], *, partitions: int, replication_factor: int
) -> list[str]:
    """Create the topics that do not exist yet; returns the ones created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = sorted(set(topics) - existing)
        if missing:
            await admin.create_topics(
                [NewTopic(t, num_partitions=partitions, replication_factor=replication_factor) for t in missing]
            )
            log.info("created topics %s", ", ".join(missing))
        return missing
    finally:
        await admin.close()
