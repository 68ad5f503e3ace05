"""MongoDB client factory, per-service database and index bootstrap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase


@dataclass(frozen=True)
class Index:
    """An index a service needs; created (idempotently) at start-up."""

    collection: str
    keys: Sequence[tuple[str, int]]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Mongo:
    client: AsyncIOMotorClient[Any]
    db: AsyncIOMotorDatabase[Any]

    async def ping(self) -> None:
        await self.client.admin.command("ping")

    def close(self) -> None:
        self.client.close()


def connect(url: str, database: str, *, timeout_ms: int = 5000, app_name: str | None = None) -> Mongo:
    """Create a client (lazy: nothing is contacted until the first command)."""
    client: AsyncIOMotorClient[Any] = AsyncIOMotorClient(
        url,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        appname=app_name,
        uuidRepresentation="standard",
    )
    return Mongo(client=client, db=client[database])


async def ensure_indexes(db: AsyncIOMotorDatabase[Any], indexes: Sequence[Index]) -> None:
    for index in indexes:
        await db[index.collection].create_index(list(index.keys), **index.options)
