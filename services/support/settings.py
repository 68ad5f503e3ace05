"""Settings of the support service (environment variables; see docs/operations.md)."""

from __future__ import annotations

from typing import ClassVar

from shared.config import ServiceSettings


class SupportSettings(ServiceSettings):
    service_name: ClassVar[str] = "support"

    # After-sales tickets
    ticket_sla_minutes: float = 24 * 60
    """A ticket waiting this long for a staff answer is flagged `overdue` in every view."""
    evidence_max_bytes: int = 2 * 1024 * 1024
    evidence_max_files: int = 5
    evidence_types: str = "image/png,image/jpeg,image/gif,image/webp,application/pdf"
    """Allowed evidence types, recognised from the file's own bytes, not the client's claim."""

    # Email notifications (the local SMTP sink in dev and tests)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_use_tls: bool = False
    smtp_timeout_seconds: float = 10.0
    mail_from: str = "Kameng <no-reply@kameng.local>"
    mail_max_attempts: int = 8
    mail_poll_interval_ms: int = 500

    # Partner webhooks
    webhook_max_attempts: int = 8
    """Failed deliveries after which a delivery goes to the dead-letter list."""
    webhook_backoff_initial_ms: int = 1000
    webhook_backoff_max_ms: int = 10 * 60 * 1000
    webhook_timeout_seconds: float = 10.0
    webhook_poll_interval_ms: int = 500
    webhook_max_per_partner: int = 10

    # Partner feed (a topic per partner; docs/partner-events.md)
    partner_feed_bootstrap_servers: str | None = None
    """What `GET /partner/feed` tells partners to connect to (their SASL listener in production);
    defaults to KAFKA_BOOTSTRAP_SERVERS, which is right for `make dev`."""
    partner_feed_schema_url: str = "/api/v1/partner/feed/schema"
    """Where partners find the event schema: by default the JSON Schema support serves (through
    the gateway); the full AsyncAPI document is docs/asyncapi.json (channel `partnerOrderEvents`)."""
    partner_replay_max_days: int = 30
    """How far back a replay may start; support keeps partners' events a day longer."""
    partner_replay_batch: int = 200
    """Events republished per transaction by the replay loop."""
    partner_replay_poll_interval_ms: int = 500

    @property
    def evidence_type_set(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.evidence_types.split(",") if t.strip())
