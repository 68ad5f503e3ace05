"""The edge's Redis link (shared.redis_client.CommandLink) against the real Redis: every reply in
order with an error reply in its place, concurrent batches never mixing their replies, and a
connection Redis dropped replaced once without the caller seeing it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.exceptions import NoScriptError, ResponseError

from shared import redis_client
from shared.contracts.envelope import new_id
from shared.redis_client import CommandLink


@pytest.fixture
async def link(infra: dict[str, str]) -> AsyncIterator[CommandLink]:
    link = CommandLink(infra["REDIS_URL"], max_connections=4)
    yield link
    await link.aclose()


async def test_replies_come_in_order_with_errors_in_place(link: CommandLink) -> None:
    key = f"link:{new_id()}"
    replies = await link.send(
        [
            ("SET", key, "1", "NX", "EX", 60),
            ("EVALSHA", "0" * 40, 0),
            ("INCR", key),
            ("HGETALL", f"{key}:missing"),
            ("LPUSH", key, "x"),  # WRONGTYPE: a string is not a list
            ("GET", key),
        ]
    )
    assert replies[0] == b"OK"
    assert isinstance(replies[1], NoScriptError)
    assert replies[2] == 2
    assert not replies[3]  # an empty hash ([] or {} by protocol version)
    assert isinstance(replies[4], ResponseError) and "WRONGTYPE" in str(replies[4])
    assert replies[5] == b"2"


async def test_concurrent_batches_each_get_their_own_replies(link: CommandLink) -> None:
    keys = [f"link:{new_id()}" for _ in range(200)]
    await link.send([("SET", k, k) for k in keys])
    # 200 batches over 4 connections: a reply read by the wrong batch would show here.
    replies = await asyncio.gather(*(link.send([("GET", k), ("EXISTS", k)]) for k in keys))
    assert replies == [[k.encode(), 1] for k in keys]


async def test_a_connection_redis_dropped_is_replaced_and_the_batch_still_answered(
    link: CommandLink, infra: dict[str, str]
) -> None:
    ((before,),) = [await link.send([("CLIENT", "ID")])]
    admin = redis_client.connect(infra["REDIS_URL"])
    try:
        # What a Redis restart does to every idle connection: closed under the client.
        assert await admin.execute_command("CLIENT", "KILL", "ID", before) == 1
    finally:
        await admin.aclose()
    key = f"link:{new_id()}"
    assert await link.send([("SET", key, "v"), ("GET", key)]) == [b"OK", b"v"]
    ((after,),) = [await link.send([("CLIENT", "ID")])]
    assert after != before  # the batch went on a fresh connection
