"""Settings of the catalog service (environment variables; see docs/operations.md)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.config import ServiceSettings


class CatalogSettings(ServiceSettings):
    service_name: ClassVar[str] = "catalog"

    catalog_low_stock_threshold: int = Field(
        default=10, ge=0, description="a card-key SKU with this many sellable units or fewer shows `low`"
    )
