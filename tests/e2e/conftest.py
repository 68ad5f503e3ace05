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
