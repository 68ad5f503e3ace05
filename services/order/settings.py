"""Settings of the order service (environment variables; see docs/operations.md)."""

from __future__ import annotations

from typing import ClassVar

from shared.config import ServiceSettings


class OrderSettings(ServiceSettings):
    service_name: ClassVar[str] = "order"
