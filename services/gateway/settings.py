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
    assistant_url: str = "http://127.0.0.1:8007"
    # The web process (storefront at `/`, console at `/admin/`): every path that is not the API,
    # health or schema is forwarded there. Empty: no web, those paths are 404.
    web_url: str = ""

    # Three real-name document images of up to 5 MB each, with their multipart framing, must pass.
    request_max_body_bytes: int = 16 * 1024 * 1024

    upstream_timeout_seconds: float = 10.0
    upstream_connect_timeout_seconds: float = 2.0
    upstream_max_connections: int = 200

    # Rate limits (fixed windows in Redis). The per-IP default is high because a whole office
    # (or the load test, 1,000 buyers from 127.0.0.1) can share one address; per user is the
    # meaningful limit.
    rate_limit_window_seconds: int = 60
    rate_limit_per_ip: int = 100_000
    rate_limit_per_user: int = 3_000

    # Partner (API key) requests.
    partner_max_skew_seconds: int = 300
    partner_token_ttl_seconds: int = 60
    api_key_cache_seconds: float = 5.0

    # CORS for browser clients on other origins (e.g. the storefront); none allowed when empty.
    cors_allow_origins: list[str] = []
    cors_max_age_seconds: int = 600

    openapi_cache_seconds: float = 60.0

    # Catalog answers the gateway keeps are checked against Redis on every use (cache.py); this
    # only bounds how long one lives should a catalog change's generation bump be lost.
    kept_answer_max_age_seconds: float = 30.0

    # Prometheus `/metrics` of the gateway, on this port only (never the public one); unset: off.
    metrics_port: int | None = None

    # Idempotency-Key on POST: responses kept this long; a request in flight holds its key for
    # at most `pending` seconds: longer than the upstream timeouts (10 + 2 s), and no longer, as
    # a gateway killed mid-request leaves the marker behind and the buyer's retry gets 409
    # `idempotency-in-progress` until it expires (issue 12: tests/chaos).
    idempotency_ttl_seconds: int = 24 * 3600
    idempotency_pending_seconds: int = 15

    def upstreams(self) -> dict[str, str]:
        return {
            "identity": self.identity_url,
            "wallet": self.wallet_url,
            "catalog": self.catalog_url,
            "order": self.order_url,
            "fulfilment": self.fulfilment_url,
            "support": self.support_url,
            "assistant": self.assistant_url,
        }
