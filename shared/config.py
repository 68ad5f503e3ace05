"""Configuration from environment variables only (one settings object per service).

The same variable names are read in every runtime shape: the embedded dev stack exports them,
docker-compose and the k8s manifests set them. `docs/operations.md` lists them all.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789abcdef"  # noqa: S105 - refused when KAMENG_ENV=prod


class InfraSettings(BaseSettings):
    """Where the shared infrastructure is: read by every service and by the test harness."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    mongodb_url: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    redis_url: str = "redis://127.0.0.1:6379/0"


class ServiceSettings(InfraSettings):
    """Settings common to every service process. A service subclasses this to add its own."""

    # Fixed per service class, never read from the environment.
    service_name: ClassVar[str] = "service"
    environment: Literal["dev", "test", "prod"] = Field(default="dev", alias="KAMENG_ENV")
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    request_max_body_bytes: int = 10 * 1024 * 1024

    # MongoDB: each service owns one database, `kameng_<service>` unless overridden.
    mongodb_database: str | None = None
    mongodb_timeout_ms: int = 5000

    # Kafka producer: acks and idempotence are configurable because the embedded broker (tansu)
    # cannot do idempotent producers while production Kafka should.
    kafka_acks: Literal["all", "1", "0"] = "all"
    kafka_enable_idempotence: bool = False
    kafka_topic_partitions: int = 6
    kafka_replication_factor: int = 1
    # A member that stops heartbeating is out of the group after the session timeout; a rebalance
    # waits at most the rebalance timeout for members to rejoin (the client's default is 5 min,
    # which left a restarted service waiting that long for its dead predecessor).
    kafka_session_timeout_ms: int = 6000
    kafka_rebalance_timeout_ms: int = 10000
    kafka_consumer_concurrency: int = Field(
        default=1, description="consumers per topic in this process (partitions spread across them)"
    )

    # Consumer retries before the dead-letter topic (infrastructure errors retry without limit).
    consumer_max_attempts: int = 5
    consumer_backoff_initial_ms: int = 50
    consumer_backoff_max_ms: int = 5000
    # Records one poll may hand a subscriber, applied in one MongoDB transaction (one inbox and
    # one outbox write for all of them, docs/architecture.md Decision 31); 1 applies each record
    # in its own transaction, as before batching.
    consumer_batch_max_records: int = Field(default=50, ge=1)
    # How long a batch poll waits for a first record (the client sleeps as long again after an
    # empty poll, so this bounds the extra latency of an idle consumer).
    consumer_batch_timeout_ms: int = Field(default=100, ge=1)

    # Authentication: services verify the access tokens identity signs (and the gateway mints for
    # partner API-key calls) themselves, so no service trusts a header it cannot check.
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    access_token_ttl_seconds: int = 900

    # Outbox relay
    outbox_batch_size: int = 500
    outbox_poll_interval_ms: int = 500
    outbox_lease_seconds: float = 10.0
    outbox_sent_retention_hours: float = 72.0

    @model_validator(mode="after")
    def _no_dev_secrets_in_prod(self) -> ServiceSettings:
        secret = self.jwt_secret.get_secret_value()
        if self.environment == "prod" and (secret == DEV_JWT_SECRET or len(secret) < 32):
            raise ValueError("JWT_SECRET must be set to a random value of at least 32 characters in prod")
        return self

    @property
    def database_name(self) -> str:
        return self.mongodb_database or f"kameng_{self.service_name}"
