"""Settings of the catalog service (environment variables; see docs/operations.md)."""

from __future__ import annotations

from typing import ClassVar

from shared.config import ServiceSettings


class CatalogSettings(ServiceSettings):
    service_name: ClassVar[str] = "catalog"
