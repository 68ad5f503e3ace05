"""Helpers for the identity and gateway e2e tests: accounts, signed partner requests, the
one-time codes as delivered (mail sink, SMS simulator), and a direct look at identity's database
(its delivery outbox and event outbox)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pymongo
import pytest
import redis

from deploy.platform import Platform
from deploy.services import DEV_DEFAULTS
from services.gateway.signing import sign
from services.identity.domain import id_check_char
from shared.contracts.envelope import new_id
from tests.helpers import wait_until

PASSWORD = "correct horse battery"


@pytest.fixture
def gateway(platform: Platform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform.gateway_url, timeout=15) as client:
        yield client


@pytest.fixture(scope="session")
def identity_db(infra: dict[str, str]) -> Iterator[Any]:
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(infra["MONGODB_URL"], tz_aware=True)
    yield client["kameng_identity"]
    client.close()


@pytest.fixture(scope="session")
def redis_db(infra: dict[str, str]) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(infra["REDIS_URL"])
    yield client
    client.close()


CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


class Inboxes:
    """The one-time codes identity delivered: emails in the mail sink, texts in the SMS
    simulator, read over their HTTP APIs as a person would read their inbox."""

    def __init__(self, platform: Platform) -> None:
        self.mail = platform.url("mailsink")
        self.sms = platform.url("smssim")
        self.seen: dict[str, int] = {}

    def codes(self, to: str) -> list[str]:
        if "@" in to:
            texts = [m["body"] for m in httpx.get(f"{self.mail}/messages", params={"to": to}).json()]
        else:
            texts = [m["text"] for m in httpx.get(f"{self.sms}/messages", params={"phone": to}).json()]
        return [m.group(1) for t in texts if (m := CODE.search(t))]

    def next_code(self, to: str) -> str:
        """The next code delivered to `to` after the last one returned (waits for the delivery)."""
        seen = self.seen.get(to, 0)
        codes = wait_until(lambda: (c := self.codes(to))[seen:] and c, message=f"a code delivered to {to}")
        self.seen[to] = len(codes)
        return codes[-1]


@pytest.fixture
def inboxes(platform: Platform) -> Inboxes:
    return Inboxes(platform)


def unique_email() -> str:
    return f"u{new_id()[:12]}@example.com"


def unique_phone() -> str:
    return "139" + f"{int(new_id()[:10], 16) % 10**8:08d}"


def id_number(birth: str = "19900307") -> str:
    """A valid 18-digit ID number (random sequence code) with a GB 11643 check digit."""
    first17 = "110105" + birth + f"{int(new_id()[:8], 16) % 1000:03d}"
    return first17 + id_check_char(first17)


def register(gateway: httpx.Client, **body: str) -> str:
    r = gateway.post("/api/v1/auth/register", json={"password": PASSWORD, **body})
    assert r.status_code == 201, r.text
    return str(r.json()["user_id"])


def login(gateway: httpx.Client, login_name: str, password: str = PASSWORD, **extra: str) -> dict[str, Any]:
    r = gateway.post("/api/v1/auth/login", json={"login": login_name, "password": password, **extra})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def new_account(gateway: httpx.Client) -> tuple[str, str, dict[str, str]]:
    """(user_id, email, auth headers) of a fresh buyer."""
    email = unique_email()
    user_id = register(gateway, email=email)
    tokens = login(gateway, email)
    return user_id, email, {"Authorization": f"Bearer {tokens['access_token']}"}


def admin_headers(gateway: httpx.Client) -> dict[str, str]:
    tokens = login(gateway, DEV_DEFAULTS["KAMENG_ADMIN_EMAIL"], DEV_DEFAULTS["KAMENG_ADMIN_PASSWORD"])
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def signed_headers(
    key_id: str,
    secret: str,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or new_id()
    return {
        "X-Api-Key": key_id,
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": sign(secret, method, path, ts, nonce, body),
    }


def assert_problem(r: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    if slug:
        assert body["type"].endswith("/" + slug), body
    return body


def outbox_events(identity_db: Any, event_type: str, key: str) -> list[dict[str, Any]]:
    return list(identity_db.outbox.find({"type": event_type, "key": key}))
