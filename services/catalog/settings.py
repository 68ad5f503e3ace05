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
    catalog_cache_check_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="how often a replica looks whether another replica changed the catalog (browse cache)",
    )
    catalog_cache_max_age_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="a browse cache entry is reloaded after this long, whatever happened"
    )
