"""Async fixtures for the end-to-end tests that drive the platform with events and HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from deploy.platform import Platform


@pytest.fixture
async def api(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """An async client of the gateway."""
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=15) as client:
        yield client


@pytest.fixture
async def kafka(infra: dict[str, str]) -> AsyncIterator[AIOKafkaProducer]:
    """A plain producer, to publish the events other services would emit."""
    producer = AIOKafkaProducer(bootstrap_servers=infra["KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    yield producer
    await producer.stop()


# Short clocks for support, so the SLA flag and webhook retries show within a test.
FAST_SUPPORT_ENV = {
    "TICKET_SLA_MINUTES": "0.05",  # 3 s
    "WEBHOOK_BACKOFF_INITIAL_MS": "200",
    "WEBHOOK_MAX_ATTEMPTS": "4",
}


@pytest.fixture(scope="session")
def fast_support(platform: Platform) -> Platform:
    """The platform with support restarted once on FAST_SUPPORT_ENV."""
    platform.restart("support", FAST_SUPPORT_ENV)
    return platform
