"""Gateway settings: where each service is, and the limits of the public edge."""

from __future__ import annotations

from typing import ClassVar

from shared.config import ServiceSettings


class GatewaySettings(ServiceSettings):
    service_name: ClassVar[str] = "gateway"

    identity_url: str = "http://127.0.0.1:8001"
    wallet_url: str = "http://127.0.0.1:8002"
    catalog_url: str = "http://127.0.0.1:8003"
    order_url: str = "http://127.0.0.1:8004"
    fulfilment_url: str = "http://127.0.0.1:8005"
    support_url: str = "http://127.0.0.1:8006"

    upstream_timeout_seconds: float = 10.0
    upstream_connect_timeout_seconds: float = 2.0
    upstream_max_connections: int = 200

    def upstreams(self) -> dict[str, str]:
        return {
            "identity": self.identity_url,
            "wallet": self.wallet_url,
            "catalog": self.catalog_url,
            "order": self.order_url,
            "fulfilment": self.fulfilment_url,
            "support": self.support_url,
        }
