"""Smart assistant answer time: p50/p99 of `POST /api/v1/assistant/ask` under 16 concurrent
askers, next to `GET /api/v1/help/articles` (support's plain list read) with the same askers in
the same run, through the gateway on the embedded stack.

The help center is the unit tests' fixture (21 articles, 3 announcements) published through the
staff API; questions are the evaluation's (colloquial, Traditional, with order ids), half of them
asked signed in. BENCH_ASSISTANT_REQUESTS (default 800 per endpoint) and
BENCH_ASSISTANT_CONCURRENCY (default 16) change the run.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from pathlib import Path
from typing import Any

import httpx

from deploy.platform import Platform, default_base_env
from deploy.stack import EmbeddedStack
from tests.helpers import auth
from tests.scenarios import percentile
from tests.unit.test_assistant_eval import CASES
from tests.unit.test_assistant_helpcenter import ANNOUNCEMENTS, ARTICLES

REQUESTS = int(os.environ.get("BENCH_ASSISTANT_REQUESTS", "800"))
CONCURRENCY = int(os.environ.get("BENCH_ASSISTANT_CONCURRENCY", "16"))
STAFF = auth(roles=("staff",))


async def publish_help_center(client: httpx.AsyncClient) -> None:
    for title, body in ARTICLES.values():
        r = await client.post("/api/v1/admin/help/articles", json={"title": title, "body": body}, headers=STAFF)
        r.raise_for_status()
    for title, body in ANNOUNCEMENTS.values():
        r = await client.post("/api/v1/admin/announcements", json={"title": title, "body": body}, headers=STAFF)
        r.raise_for_status()
    deadline = time.monotonic() + 60
    while True:
        r = await client.post("/api/v1/assistant/ask", json={"question": "卡密在哪里查看"})
        if r.status_code == 200 and r.json()["sources"]:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the assistant never answered from the help center: {r.text}")
        await asyncio.sleep(0.2)


async def measure(client: httpx.AsyncClient, requests: list[tuple[str, str, Any, dict[str, str]]]) -> dict[str, Any]:
    """Send `requests` with CONCURRENCY in flight; latency of each, in milliseconds."""
    queue = iter(requests)
    latencies: list[float] = []
    errors = 0

    async def asker() -> None:
        nonlocal errors
        for method, path, body, headers in queue:
            started = time.perf_counter()
            r = await client.request(method, path, json=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            errors += r.status_code != 200

    started = time.perf_counter()
    await asyncio.gather(*(asker() for _ in range(CONCURRENCY)))
    seconds = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": errors,
        "per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
    }


async def in_process() -> dict[str, float]:
    """The assistant's own work per question (normalise, rules, jieba, BM25, compose) without
    HTTP or MongoDB: the fixture help center and in-memory orders of the unit tests."""
    from services.assistant import usecases
    from shared.auth import Caller
    from tests.unit.test_assistant_helpcenter import BUYER, loaded_deps

    deps = await loaded_deps()
    caller = Caller(user_id=BUYER)
    latencies = []
    for question, _, signed_in in CASES * 10:
        started = time.perf_counter()
        await usecases.ask(deps, question=question, order_id=None, caller=caller if signed_in else None)
        latencies.append(time.perf_counter() - started)
    return {"p50_ms": round(percentile(latencies, 50) * 1000, 2), "p99_ms": round(percentile(latencies, 99) * 1000, 2)}


async def main() -> dict[str, Any]:
    run_dir = Path(".kameng/bench/assistant")
    with EmbeddedStack(run_dir=run_dir / "stack") as infra:
        platform = Platform(base_env={**default_base_env(infra), "KAMENG_ENV": "test"}, logs_dir=run_dir / "logs")
        platform.start()
        limits = httpx.Limits(max_connections=CONCURRENCY, keepalive_expiry=2)
        async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30, limits=limits) as client:
            try:
                await publish_help_center(client)
                buyer = auth()
                questions = itertools.cycle(CASES)
                asks = []
                for i in range(REQUESTS):
                    question, _, _ = next(questions)
                    asks.append(("POST", "/api/v1/assistant/ask", {"question": question}, buyer if i % 2 else {}))
                lists = [("GET", "/api/v1/help/articles?page_size=20", None, {})] * REQUESTS
                await measure(client, asks[:50] + lists[:50])  # warm both paths and the pools
                assistant = await measure(client, asks)
                articles = await measure(client, lists)
            finally:
                platform.stop()
    return {
        "assistant_in_process": await in_process(),
        "concurrency": CONCURRENCY,
        "help_center_documents": len(ARTICLES) + len(ANNOUNCEMENTS),
        "assistant_ask": assistant,
        "help_articles_list": articles,
    }
