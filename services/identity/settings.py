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

    # One-time codes for binding a phone or email.
    contact_code_ttl_seconds: int = 600
    contact_code_max_attempts: int = 5
    contact_code_resend_seconds: int = 60

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
