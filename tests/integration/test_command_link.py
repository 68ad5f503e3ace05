"""The edge's Redis link (shared.redis_client.CommandLink) against the real Redis: every reply in
order with an error reply in its place, concurrent batches never mixing their replies, and a
connection Redis dropped replaced once without the caller seeing it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

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


async def test_a_redis_that_never_answers_fails_the_batch_within_the_timeout() -> None:
    """One deadline per round trip (not redis-py's per reply): a hung Redis is a RedisError the
    edge turns into a 503, in about `timeout`, and the connection is not used again."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = CommandLink(f"redis://127.0.0.1:{port}/0", timeout=0.5)
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(RedisTimeoutError):
            await link.send([("PING",), ("PING",)])
        assert 0.4 < asyncio.get_running_loop().time() - started < 2.0
        with pytest.raises(RedisTimeoutError):
            await link.send([("PING",)])
        assert len(accepted) == 2  # the timed-out connection was dropped, a new one opened
    finally:
        await link.aclose()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
