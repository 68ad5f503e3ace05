"""The platform's processes and the environment each one gets: one list for `make dev`
(deploy/runner.py) and for the tests (deploy.platform), so both run the platform the same way."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from deploy.stack import free_port
from services.fulfilment.settings import DEV_VAULT_KEYS
from shared.config import DEV_JWT_SECRET

BACKEND_SERVICES = ("identity", "wallet", "catalog", "order", "fulfilment", "support", "assistant")
# Stand-ins for outside systems (dev and tests only): deploy/<name>.py, started before the services.
SIMULATORS = ("paysim", "suppliersim", "mailsink", "smssim")
# Dev-only helpers that `make dev` starts and the tests do not (they bring their own collector).
DEV_TOOLS = ("traceview",)
# The web (storefront and console pages) is a client of the gateway's public API, and the
# gateway forwards every non-API path to it.
APP_PROCESSES = (*BACKEND_SERVICES, "web", "gateway")
ALL_PROCESSES = (*SIMULATORS, *APP_PROCESSES)

# Development defaults, printed by `make dev`; anything set in the environment wins.
DEV_DEFAULTS = {
    "KAMENG_ENV": "dev",
    "KAMENG_ADMIN_EMAIL": "admin@kameng.local",
    "KAMENG_ADMIN_PASSWORD": "kameng-dev-admin-2026",
    "JWT_SECRET": DEV_JWT_SECRET,
    # keyid:base64(32 bytes); dev only.
    "KAMENG_VAULT_KEYS": DEV_VAULT_KEYS,
    # keyid:base64(32 bytes); identity's secrets at rest (API key secrets, TOTP seeds, ID numbers).
    "IDENTITY_SECRETS_KEY": "dev1:ZGV2LW9ubHktaWRlbnRpdHkta2V5LTMyLWJ5dGVzISE=",
    "LOG_LEVEL": "INFO",
    # Shared by the wallet and the simulated payment provider (deploy/paysim.py); dev only.
    "PAYMENT_PROVIDER_SECRET": "dev-only-payment-provider-secret-0123456789",
}


def command(name: str) -> list[str]:
    package = "deploy" if name in (*SIMULATORS, *DEV_TOOLS) else "services"
    return [sys.executable, "-m", f"{package}.{name}"]


def assign_ports(gateway_port: int | None = None) -> dict[str, int]:
    ports = {name: free_port() for name in (*SIMULATORS, *BACKEND_SERVICES, "web")}
    ports["gateway"] = gateway_port or free_port()
    ports["mailsink_smtp"] = free_port()
    ports["gateway_metrics"] = free_port()
    return ports


def process_env(name: str, ports: Mapping[str, int], base: Mapping[str, str]) -> dict[str, str]:
    """The environment of one process: the shared base (infra URLs, secrets) plus its own port
    and where the processes it talks to are."""
    env = dict(base)
    env.update({"HOST": "127.0.0.1", "PORT": str(ports[name]), "OTEL_SERVICE_NAME": name, "PYTHONUNBUFFERED": "1"})
    # Where outside parties (payment provider, supplier) send their callbacks: the public door.
    if "gateway" in ports:
        env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{ports['gateway']}")
    if name == "gateway":
        # The gateway's /metrics listens apart from its public door (404 there), as in k8s.
        env.setdefault("METRICS_PORT", str(ports["gateway_metrics"]))
        for service in BACKEND_SERVICES:
            env[f"{service.upper()}_URL"] = f"http://127.0.0.1:{ports[service]}"
        if "web" in ports:
            env["WEB_URL"] = f"http://127.0.0.1:{ports['web']}"
    if name == "web":
        env["GATEWAY_URL"] = f"http://127.0.0.1:{ports['gateway']}"
    if name == "fulfilment":
        env.setdefault("SUPPLIER_URL", f"http://127.0.0.1:{ports['suppliersim']}")
    if name == "wallet":
        # The provider's notifications come back through the public door, like a real provider's.
        env.setdefault("PAYMENT_PROVIDER_URL", f"http://127.0.0.1:{ports['paysim']}")
        env.setdefault("PAYMENT_NOTIFY_BASE_URL", f"http://127.0.0.1:{ports['gateway']}")
    if name in ("mailsink", "support"):
        # support sends its emails to the local sink; production sets SMTP_* itself.
        env.setdefault("SMTP_HOST", "127.0.0.1")
        env.setdefault("SMTP_PORT", str(ports["mailsink_smtp"]))
    if name == "identity":
        # identity sends its one-time codes itself: email to the local sink, SMS to the simulator.
        env.setdefault("SMTP_HOST", "127.0.0.1")
        env.setdefault("SMTP_PORT", str(ports["mailsink_smtp"]))
        env.setdefault("SMS_GATEWAY_URL", f"http://127.0.0.1:{ports['smssim']}")
    return env
