"""The same-run ceilings the hot-path benchmark compares against: a bare Litestar app served the
way every Kameng process is served (`shared.service.serve`'s uvicorn options), with

- `GET /ping`: a small JSON answer, no I/O (the framework's own speed);
- `POST /hold`: one Redis Lua call (the shape of a stock hold), answered 409 problem+json as a
  sold-out order is.

`python -m tests.bench.baseline PORT REDIS_URL` runs it (bench_hot_paths.py starts it).
"""

from __future__ import annotations

import sys
from typing import Any

from litestar import Litestar, Response, get, post
from redis.asyncio import Redis

from shared.service import uvicorn_options

# The shape of the stock hold: read a counter, compare, answer; one key, one round trip.
HOLD = """
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left < tonumber(ARGV[1]) then return {0, left} end
return {1, left}
"""


def create_app(redis_url: str) -> Litestar:
    redis = Redis.from_url(redis_url, max_connections=64)
    hold = redis.register_script(HOLD)

    @get("/ping")
    async def ping() -> dict[str, Any]:
        return {"ok": True, "scenarios": [{"scenario_id": "s1", "name": "通信充值"}]}

    @post("/hold")
    async def hold_one() -> Response[dict[str, Any]]:
        ok, left = await hold(keys=["bench:{sku}:supply"], args=[1])
        if not ok:
            return Response(
                {"type": "out-of-stock", "title": "Out of stock", "status": 409, "available": left},
                status_code=409,
                media_type="application/problem+json",
            )
        return Response({"ok": True}, status_code=201)

    return Litestar([ping, hold_one])


if __name__ == "__main__":
    import uvicorn

    port, redis_url = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(create_app(redis_url), **uvicorn_options("127.0.0.1", port))
