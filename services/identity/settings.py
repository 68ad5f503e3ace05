"""Settings of the identity service (environment variables; see docs/operations.md)."""

from __future__ import annotations

from typing import ClassVar

from shared.config import ServiceSettings


class IdentitySettings(ServiceSettings):
    service_name: ClassVar[str] = "identity"
