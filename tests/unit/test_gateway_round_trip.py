"""The edge's one Redis round trip (services/gateway/store.py `run_pipeline`, edge.py): scripts go
by their sha and are loaded only when Redis does not know them, re-running just the refused
commands (never a nonce's SET NX); a signed-in caller's Idempotency-Key claim rides in the same
pipeline and is undone when the edge then refuses the request. A fake Redis that speaks the few
commands the edge sends."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from redis.exceptions import NoScriptError

from services.gateway.domain import ClaimRequest
from services.gateway.edge import Edge
from services.gateway.settings import GatewaySettings
from services.gateway.store import HIT_SHA, IdempotencyStore, run_pipeline
from shared.auth import issue_access_token
from shared.contracts.identity import denied_access_token_key
from shared.errors import Problem


@dataclass
class FakeRedis:
    values: dict[str, Any] = field(default_factory=dict)
    scripts: set[str] = field(default_factory=set)
    commands: list[tuple[Any, ...]] = field(default_factory=list)

    def run(self, command: tuple[Any, ...]) -> Any:
        self.commands.append(command)
        name, *args = command
        name = name.upper()
        if name == "EVALSHA":
            if args[0] not in self.scripts:
                return NoScriptError("NOSCRIPT No matching script")
            key = args[2]
            self.values[key] = int(self.values.get(key, 0)) + 1
            return [self.values[key], int(args[3])]
        if name == "SET":
            key, value, *options = args
            if "NX" in options and key in self.values:
                return None
            self.values[key] = value
            return True
        if name == "SCRIPT":
            self.scripts.add(HIT_SHA)
            return HIT_SHA
        if name == "DEL":
            return int(self.values.pop(args[0], None) is not None)
        if name == "GET":
            return self.values.get(args[0])
        if name == "EXISTS":
            return int(args[0] in self.values)
        if name == "HGETALL":
            return {}
        raise AssertionError(f"unexpected {command}")

    async def send(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """The edge's one round trip (shared.redis_client.CommandLink)."""
        return [self.run(c) for c in commands]

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)

    async def script_load(self, script: str) -> str:
        self.scripts.add(HIT_SHA)
        return HIT_SHA

    async def delete(self, key: str) -> int:
        return int(self.values.pop(key, None) is not None)


@dataclass
class FakePipeline:
    redis: FakeRedis
    queued: list[tuple[Any, ...]] = field(default_factory=list)

    async def __aenter__(self) -> FakePipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def execute_command(self, *command: Any) -> None:
        self.queued.append(command)

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        return [self.redis.run(c) for c in self.queued]


SECRET = "unit-test-secret-0123456789abcdef0123456789"


def edge(redis: FakeRedis, **settings: Any) -> tuple[Edge, IdempotencyStore]:
    config = GatewaySettings(jwt_secret=SECRET, **settings)
    store = IdempotencyStore(redis, secret=SECRET, ttl_seconds=60, pending_seconds=30)  # type: ignore[arg-type]
    return Edge(config, redis, keys=None), store  # type: ignore[arg-type]


def request(token: str) -> Any:
    return SimpleNamespace(
        headers={"authorization": f"Bearer {token}"}, client=SimpleNamespace(host="10.0.0.1"), method="POST"
    )


def token(user_id: str = "u1") -> str:
    return issue_access_token(SECRET, user_id=user_id, roles=("buyer",), level="retail", ttl_seconds=900)


async def test_a_script_redis_does_not_know_is_loaded_and_only_refused_commands_run_again() -> None:
    redis = FakeRedis()
    results = await run_pipeline(
        redis,  # type: ignore[arg-type]
        [("SET", "nonce:k:n1", "1", "NX", "EX", 600), ("EVALSHA", HIT_SHA, 1, "rl:ip:a", 60000)],
    )
    assert results == [True, [1, 60000]]  # the nonce counted as fresh: it ran once
    assert [c[0] for c in redis.commands] == ["SET", "EVALSHA", "SCRIPT", "EVALSHA"]
    redis.commands.clear()
    await run_pipeline(redis, [("EVALSHA", HIT_SHA, 1, "rl:ip:a", 60000)])  # type: ignore[arg-type]
    assert len(redis.commands) == 1  # known now: one round trip, no SCRIPT EXISTS, no reload


async def test_the_claim_rides_in_the_edge_round_trip() -> None:
    redis = FakeRedis()
    gate, store = edge(redis)
    claim = store.claim_request("key-1", "fp")
    assert isinstance(claim, ClaimRequest)
    first = await gate.admit(request(token()), "orders", b"{}", claim)
    assert first.claimed and first.caller is not None
    found = await store.begin(first.caller.user_id, "key-1", "fp", claimed=first.claimed)
    assert found.redis_key in redis.values  # type: ignore[union-attr]
    again = await gate.admit(request(token()), "orders", b"{}", claim)
    assert not again.claimed  # the first request holds the key: begin() looks at its record


async def test_a_refused_request_gives_its_claim_back() -> None:
    redis = FakeRedis()
    gate, store = edge(redis, rate_limit_per_user=1)
    await gate.admit(request(token()), "orders", b"{}", store.claim_request("a", "fp"))
    with pytest.raises(Problem) as refused:
        await gate.admit(request(token()), "orders", b"{}", store.claim_request("b", "fp"))
    assert refused.value.status_code == 429
    assert not any(k.startswith("idem:") and k.endswith(_hashed("b")) for k in redis.values)

    signed_out = token("u2")
    caller = gate.tokens.decode(signed_out)
    redis.values[denied_access_token_key(caller.token_id)] = "1"
    with pytest.raises(Problem) as denied:
        await gate.admit(request(signed_out), "orders", b"{}", store.claim_request("c", "fp"))
    assert denied.value.status_code == 401
    assert not any(k.endswith(_hashed("c")) for k in redis.values)


def _hashed(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:40]
