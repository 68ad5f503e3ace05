"""Server-side render time of the storefront's home, product and order-center pages (the web
process, which calls the public API and renders HTML) next to the same API calls without
rendering, under 32 concurrent clients, measured in one run on one platform.

Home and product go through the web's short-TTL page cache (what every visitor sees); the order
center is per buyer and never cached. BENCH_WEB_REQUESTS (default 600 per target) and
BENCH_WEB_CLIENTS (default 32) change the run.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from deploy.platform import Platform, default_base_env
from deploy.stack import EmbeddedStack
from tests.browser.kit import AdminApi, BuyerApi

REQUESTS = int(os.environ.get("BENCH_WEB_REQUESTS", "600"))
CLIENTS = int(os.environ.get("BENCH_WEB_CLIENTS", "32"))
RUN = Path(".kameng") / "bench-web" / time.strftime("%Y%m%d-%H%M%S")


def _session_cookie(web_url: str, login: str, password: str) -> dict[str, str]:
    """Sign in through the web's form, like a browser: the session and CSRF cookies."""
    with httpx.Client(base_url=web_url, timeout=30) as client:
        client.get("/login")
        token = client.cookies.get("kameng_csrf")
        r = client.post("/login", data={"login": login, "password": password, "_csrf_token": token or ""})
        assert r.status_code in (200, 303), r.text[:300]
        return dict(client.cookies.items())


async def _measure(
    base_url: str, path: str, *, headers: dict[str, str] | None = None, cookies: dict[str, str] | None = None
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    remaining = REQUESTS
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS, keepalive_expiry=2)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, cookies=cookies, timeout=30, limits=limits
    ) as client:
        await client.get(path)  # warm: connections, caches

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                r = await client.get(path)
                latencies.append((time.perf_counter() - started) * 1000)
                if r.status_code != 200:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
        "per_second": round(len(latencies) / elapsed, 1),
        "errors": errors,
    }


async def _api_pair(gateway: str, paths: list[str], headers: dict[str, str] | None) -> dict[str, Any]:
    """What a page needs from the API, called without rendering (in sequence, as the page does)."""
    latencies: list[float] = []
    remaining = REQUESTS
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS, keepalive_expiry=2)
    async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=30, limits=limits) as client:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                for path in paths:
                    (await client.get(path)).raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
        "per_second": round(len(latencies) / elapsed, 1),
    }


async def main() -> dict[str, Any]:
    with EmbeddedStack(run_dir=RUN / "stack") as infra:
        platform = Platform(base_env={**default_base_env(infra), "KAMENG_ENV": "test"}, logs_dir=RUN / "platform")
        platform.start()
        try:
            admin = AdminApi(platform.gateway_url)
            made = admin.product(name="bench 中国移动话费", price_cents=100, keys=[f"B-{i:05d}" for i in range(30)])
            admin.close()
            buyer = BuyerApi(platform.gateway_url, f"bench-{int(time.time())}@example.com", "s3cret-passw0rd")
            buyer.top_up(10_000)
            for _ in range(20):
                buyer.order(made["sku_id"])
            token = buyer.headers
            buyer.close()
            web = platform.url("web")
            cookies = _session_cookie(web, buyer.login, buyer.password)
            product = f"/product/{made['product_id']}"
            results = {
                "clients": CLIENTS,
                "requests_per_target": REQUESTS,
                "home_page": await _measure(web, "/"),
                "home_api": await _api_pair(
                    platform.gateway_url, ["/api/v1/catalog/tree", "/api/v1/announcements"], None
                ),
                "product_page": await _measure(web, product, cookies=cookies),
                "product_api": await _api_pair(
                    platform.gateway_url, [f"/api/v1/catalog/products/{made['product_id']}"], token
                ),
                "orders_page": await _measure(web, "/orders", cookies=cookies),
                "orders_api": await _api_pair(platform.gateway_url, ["/api/v1/orders?page=1&page_size=20"], token),
            }
            # The order center shows every order of the page: a sanity check the numbers are real.
            body = httpx.get(f"{web}/orders", cookies=cookies).text
            results["orders_listed"] = len(re.findall(r'href="/orders/[^"?]+"', body))
            return results
        finally:
            platform.stop()


if __name__ == "__main__":
    print(asyncio.run(main()))
