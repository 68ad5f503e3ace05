"""The gateway's Idempotency-Key records against the real Redis (services/gateway/store.py): a key
whose request reached a service without an answer to replay is never taken for a new key again.
Its retry goes to the service (which knows what the first attempt did), so a kept refusal can
never answer it (Decision 35: a buyer whose lost first attempt placed an order would have been
told "sold out")."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.gateway.domain import Claim, Stored
from services.gateway.store import IdempotencyStore, run_one
from shared.contracts.envelope import new_id
from shared.errors import Problem
from shared.redis_client import CommandLink


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def link(infra: dict[str, str]) -> AsyncIterator[CommandLink]:
    link = CommandLink(infra["REDIS_URL"])
    yield link
    await link.aclose()


def store(link: CommandLink, clock: Clock) -> IdempotencyStore:
    return IdempotencyStore(link, secret="s", ttl_seconds=3600, pending_seconds=15, clock=clock)


async def edge_claims(link: CommandLink, keys: IdempotencyStore, owner: str, key: str, fp: str) -> bool:
    """What the edge's round trip does for a signed-in caller: true only for a key never seen."""
    request = keys.claim_request(key, fp)
    assert request is not None
    return bool(await run_one(link, *request.take(owner)))


async def test_a_key_whose_forward_failed_is_retried_at_the_service_never_as_a_new_key(link: CommandLink) -> None:
    clock, owner, key = Clock(), new_id(), "buy-1"
    keys = store(link, clock)
    assert await edge_claims(link, keys, owner, key, "fp")
    claim = await keys.begin(owner, key, "fp", claimed=True)
    assert isinstance(claim, Claim)
    await keys.abandon(claim)  # the order service died after placing the order, before answering
    assert not await edge_claims(link, keys, owner, key, "fp")  # not new: no kept answer for it
    again = await keys.begin(owner, key, "fp")
    assert isinstance(again, Claim)  # taken over: forwarded, the service replays what it did
    with pytest.raises(Problem) as busy:  # and while that retry runs, the key is in progress
        await keys.begin(owner, key, "fp")
    assert busy.value.slug == "idempotency-in-progress"
    await keys.finish(again, 201, "application/json", b'{"order_id":"o1"}')
    replay = await keys.begin(owner, key, "fp")
    assert isinstance(replay, Stored) and (replay.status, replay.body) == (201, b'{"order_id":"o1"}')


async def test_a_pending_key_whose_gateway_died_is_taken_over_once_it_is_older_than_a_request(
    link: CommandLink,
) -> None:
    clock, owner, key = Clock(), new_id(), "buy-2"
    keys = store(link, clock)
    assert await edge_claims(link, keys, owner, key, "fp")  # ... and that gateway was killed
    with pytest.raises(Problem):
        await keys.begin(owner, key, "fp")  # within a request's time: still in progress
    clock.now += 16
    assert not await edge_claims(link, keys, owner, key, "fp")  # it did not lapse into a new key
    first = await keys.begin(owner, key, "fp")
    assert isinstance(first, Claim)
    with pytest.raises(Problem):
        await keys.begin(owner, key, "fp")  # one retry takes it over, not two
    with pytest.raises(Problem) as reused:
        await keys.begin(owner, key, "another body")
    assert reused.value.slug == "idempotency-key-reused"


async def test_a_5xx_answer_is_not_replayed_and_leaves_the_key_unsettled(link: CommandLink) -> None:
    clock, owner, key = Clock(), new_id(), "buy-3"
    keys = store(link, clock)
    claim = await keys.begin(owner, key, "fp")
    assert isinstance(claim, Claim)
    await keys.finish(claim, 503, "application/problem+json", b"{}")
    assert not await edge_claims(link, keys, owner, key, "fp")
    assert isinstance(await keys.begin(owner, key, "fp"), Claim)
