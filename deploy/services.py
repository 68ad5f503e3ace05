"""The platform's processes and the environment each one gets: one list for `make dev`
(honcho) and for the tests (deploy.platform), so both run the platform the same way."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from deploy.stack import free_port
from shared.config import DEV_JWT_SECRET

BACKEND_SERVICES = ("identity", "wallet", "catalog", "order", "fulfilment", "support")
ALL_PROCESSES = (*BACKEND_SERVICES, "gateway")

# Development defaults, printed by `make dev`; anything set in the environment wins.
DEV_DEFAULTS = {
    "KAMENG_ENV": "dev",
    "KAMENG_ADMIN_EMAIL": "admin@kameng.local",
    "KAMENG_ADMIN_PASSWORD": "kameng-dev-admin-2026",
    "JWT_SECRET": DEV_JWT_SECRET,
    # keyid:base64(32 bytes); dev only.
    "KAMENG_VAULT_KEYS": "dev1:ZGV2LW9ubHktdmF1bHQta2V5LTMyLWJ5dGVzLW9rISE=",
    "LOG_LEVEL": "INFO",
}


def command(name: str) -> list[str]:
    return [sys.executable, "-m", f"services.{name}"]


def assign_ports(gateway_port: int | None = None) -> dict[str, int]:
    ports = {name: free_port() for name in BACKEND_SERVICES}
    ports["gateway"] = gateway_port or free_port()
    return ports


def process_env(name: str, ports: Mapping[str, int], base: Mapping[str, str]) -> dict[str, str]:
    """The environment of one process: the shared base (infra URLs, secrets) plus its own port
    and, for the gateway, where every service is."""
    env = dict(base)
    env.update({"HOST": "127.0.0.1", "PORT": str(ports[name]), "OTEL_SERVICE_NAME": name, "PYTHONUNBUFFERED": "1"})
    if name == "gateway":
        for service in BACKEND_SERVICES:
            env[f"{service.upper()}_URL"] = f"http://127.0.0.1:{ports[service]}"
    return env
