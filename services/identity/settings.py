"""Settings of the identity service (environment variables; see docs/identity.md)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, model_validator

from services.identity.secrets import DEV_SECRETS_KEY, parse_key
from shared.config import ServiceSettings


class IdentitySettings(ServiceSettings):
    service_name: ClassVar[str] = "identity"

    # AES-GCM master key for secrets at rest (API key secrets, TOTP seeds, ID numbers).
    identity_secrets_key: SecretStr = SecretStr(DEV_SECRETS_KEY)

    # The first admin, created at start when both are set (idempotent).
    admin_email: str | None = Field(default=None, alias="KAMENG_ADMIN_EMAIL")
    admin_password: SecretStr | None = Field(default=None, alias="KAMENG_ADMIN_PASSWORD")

    refresh_token_ttl_seconds: int = 30 * 24 * 3600

    # Brute-force protection on login: failures counted per account and per client IP within
    # the window; reaching the limit locks for base seconds, doubling per lock in a row.
    login_failure_window_seconds: int = 900
    login_max_failures_per_account: int = 5
    login_max_failures_per_ip: int = 100
    login_lock_base_seconds: int = 60
    login_lock_max_seconds: int = 3600

    # One-time codes (binding a phone or email, password reset): how long one works, how many
    # wrong tries it survives, how soon another may be asked for, and how many one address may
    # receive per hour.
    contact_code_ttl_seconds: int = 600
    contact_code_max_attempts: int = 5
    contact_code_resend_seconds: int = 60
    contact_codes_per_hour: int = 5

    # Delivering the codes (services/identity/notifier.py): email over SMTP, SMS over the SMS
    # gateway's HTTP API (deploy/smssim.py in dev and tests). A message is retried with backoff
    # until it is sent or its code has expired.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_use_tls: bool = False
    smtp_timeout_seconds: float = 10.0
    mail_from: str = "Kameng <no-reply@kameng.local>"
    sms_gateway_url: str = "http://127.0.0.1:8095"
    sms_gateway_token: SecretStr = SecretStr("dev-only-sms-token")
    sms_sign_name: str = "Kameng"
    notify_poll_interval_ms: int = 500

    # Real-name documents (上传手持证件照片): each image at most this size; kept this long after
    # the review's decision, then the sweep (every `sweep` seconds) deletes the bytes and keeps the
    # review. The body limit fits three full-size images and the multipart framing.
    real_name_document_max_bytes: int = 5 * 1024 * 1024
    real_name_document_retention_seconds: float = 30 * 24 * 3600
    real_name_document_sweep_seconds: float = 60.0
    request_max_body_bytes: int = 16 * 1024 * 1024

    api_keys_per_user: int = 10
    totp_issuer: str = "Kameng"

    # argon2id cost: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane), about 70 ms here.
    # Each hash records its parameters; raising them rehashes a password at its next login.
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1

    @model_validator(mode="after")
    def _check_secrets_key(self) -> IdentitySettings:
        spec = self.identity_secrets_key.get_secret_value()
        parse_key(spec)
        if self.environment == "prod" and spec == DEV_SECRETS_KEY:
            raise ValueError("IDENTITY_SECRETS_KEY must be set to a real key in prod")
        return self
