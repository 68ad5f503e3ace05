"""Peak-load hot paths (issue 13), each as a ratio to a ceiling measured in the same run:

- browse through the gateway: `GET /api/v1/catalog/tree` (10 scenarios), a product's detail
  signed in (token check, level prices, live stock), and a product search; against a bare
  Litestar GET (tests/bench/baseline.py);
- a sold-out `POST /api/v1/orders` through the gateway (a token, rate limits and a fresh
  Idempotency-Key each time, all answered 409 out-of-stock); against a bare Litestar endpoint
  doing one Redis Lua call.

Load is made by `wrk` (keep-alive connections, BENCH_HOT_CONNECTIONS, default 32, for
BENCH_HOT_SECONDS, default 8, per target, after a 2 s warm-up), so the load generator costs
little of the two cores; every response's status is counted by a wrk script, so a run whose
answers were not what the path should answer shows it. The platform runs with the rate limits
raised (they are still counted: the work is the same, only nothing is refused).

BENCH_PROFILE=1 also records each platform target's processes with py-spy while it is measured
and prints where their time goes (inclusive share of samples per function, the flame summary
docs/benchmarks.md quotes); the raw stacks are kept in .kameng/bench-hot/<run>/.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from deploy.platform import Platform, default_base_env
from deploy.stack import EmbeddedStack, free_port
from tests.helpers import auth

SECONDS = int(os.environ.get("BENCH_HOT_SECONDS", "8"))
PROFILE = os.environ.get("BENCH_PROFILE") == "1"
CONNECTIONS = int(os.environ.get("BENCH_HOT_CONNECTIONS", "32"))
RUN = Path(".kameng") / "bench-hot" / time.strftime("%Y%m%d-%H%M%S")

# Counts every status and, for POSTs, sends a fresh Idempotency-Key with each request.
WRK_SCRIPT = """
local counter = 0
-- Unique per wrk run (wrk's math.random is not seeded: the same id each run would make the
-- measured run replay the warm-up's Idempotency-Keys).
local thread_id = os.getenv("BENCH_RUN") or "0"
wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.body = os.getenv("BENCH_BODY")
local auth = os.getenv("BENCH_AUTH")
if auth and #auth > 0 then wrk.headers["Authorization"] = auth end
if wrk.body then wrk.headers["Content-Type"] = "application/json" end
local fresh_key = os.getenv("BENCH_IDEMPOTENT") == "1"
request = function()
  if fresh_key then
    counter = counter + 1
    wrk.headers["Idempotency-Key"] = "bench-" .. thread_id .. "-" .. counter
  end
  return wrk.format(nil)
end
statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do io.write(string.format("STATUS %d %d\\n", status, n)) end
  end
end
"""


def wrk(url: str, *, script: Path, env: dict[str, str] | None = None, seconds: int = SECONDS) -> dict[str, Any]:
    """One wrk run: requests/s, p50/p99 in ms and the answers by status."""
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    env = {**os.environ, **(env or {}), "BENCH_RUN": secrets.token_hex(8)}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    statuses = {int(s): int(n) for s, n in re.findall(r"^STATUS (\d+) (\d+)", out, re.M)}
    return {
        "per_second": round(rate, 1),
        "p50_ms": _ms(latency.get("50", "0ms")),
        "p99_ms": _ms(latency.get("99", "0ms")),
        "statuses": statuses,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit], 2)


def measure(
    url: str, script: Path, env: dict[str, str] | None = None, *, profile: dict[str, int] | None = None
) -> dict[str, Any]:
    """wrk on `url`; with BENCH_PROFILE=1, py-spy on the `profile` processes (name -> pid) meanwhile."""
    wrk(url, script=script, env=env, seconds=2)  # warm: connections, pools, caches
    spies = []
    if PROFILE and profile:
        for name, pid in profile.items():
            out = RUN / f"{url.split('/')[-1].split('?')[0][:20]}-{name}.txt"
            spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            command = [spy, "record", "-r", "200", "-d", str(SECONDS), "-p", str(pid), "-f", "raw", "-o", str(out)]
            spies.append((name, out, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    result = wrk(url, script=script, env=env)
    for name, out, spy in spies:
        spy.wait(30)
        result[f"profile_{name}"] = flame_summary(out)
    return result


def flame_summary(raw: Path, top: int = 14) -> list[str]:
    """The functions holding most samples (inclusive, each counted once per stack), from py-spy's
    collapsed stacks: `frame;frame;... count` per line."""
    if not raw.exists():
        return ["(no samples: py-spy could not attach)"]
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        for frame in set(stack.split(";")):
            name = re.sub(r" \((?:.*/)?(site-packages/|kameng/|perf/)?", " (", frame)
            inclusive[name] = inclusive.get(name, 0) + n
    ranked = sorted(inclusive.items(), key=lambda kv: -kv[1])
    return [f"{100 * n / max(total, 1):5.1f}% {frame}" for frame, n in ranked[:top]]


def unlimited_env(infra: dict[str, str]) -> dict[str, str]:
    """The platform's environment for a load from one machine: every request comes from one
    address and a few users, so the per-IP and per-user rate limits are raised out of the way."""
    return {
        **default_base_env(infra),
        "KAMENG_ENV": "test",
        "RATE_LIMIT_PER_IP": "100000000",
        "RATE_LIMIT_PER_USER": "100000000",
    }


async def seed_catalog(gateway: str) -> dict[str, str]:
    """10 scenarios x 2 categories x 2 products, each with a retail and a VIP price; and one
    card-key SKU with no keys (sold out)."""
    admin = auth(roles=("admin", "staff"), level="retail")
    async with httpx.AsyncClient(base_url=gateway, headers=admin, timeout=60) as client:

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            r = await client.post(path, json=body)
            assert r.status_code == 201, f"{path}: {r.status_code} {r.text[:300]}"
            return r.json()  # type: ignore[no-any-return]

        product_id = sold_out = ""
        for s in range(10):
            scenario = (await post("/api/v1/admin/scenarios", {"name": f"场景 {s} 通信充值"}))["scenario_id"]
            for c in range(2):
                category = (await post("/api/v1/admin/categories", {"scenario_id": scenario, "name": f"话费 {s}-{c}"}))[
                    "category_id"
                ]
                for p in range(2):
                    product_id = (
                        await post(
                            "/api/v1/admin/products",
                            {"category_id": category, "name": f"中国移动话费 {s}-{c}-{p}", "description": "全国通用"},
                        )
                    )["product_id"]
                    for face in (50, 100):
                        sku = await post(
                            f"/api/v1/admin/products/{product_id}/skus",
                            {
                                "name": f"{face}元",
                                "face_value_cents": face * 100,
                                "prices": {"retail": face * 98, "vip": face * 96},
                                "delivery_mode": "auto",
                                "on_sale": True,
                            },
                        )
                        sold_out = sku["sku_id"]
        # The order service learns of the SKU from catalog's event a moment later.
        buyer = auth()
        deadline = time.monotonic() + 60
        while True:
            r = await client.post(
                "/api/v1/orders", json={"sku_id": sold_out, "quantity": 1, "recipient": {}}, headers=buyer
            )
            if r.status_code == 409 and r.json()["type"].endswith("out-of-stock"):
                break
            assert time.monotonic() < deadline, f"the sold-out SKU never answered 409: {r.text[:300]}"
            await asyncio.sleep(0.3)
    return {"product_id": product_id, "sold_out_sku": sold_out}


def start_baseline(redis_url: str, logs: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (logs / "baseline.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.baseline", str(port), redis_url], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the baseline app did not start"
        time.sleep(0.2)


async def main() -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("bench_hot_paths needs wrk on PATH (apt-get install wrk)")
    RUN.mkdir(parents=True, exist_ok=True)
    script = Path(tempfile.mkdtemp()) / "count.lua"
    script.write_text(WRK_SCRIPT)
    with EmbeddedStack(run_dir=RUN / "stack") as infra:
        platform = Platform(base_env=unlimited_env(infra), logs_dir=RUN / "platform")
        platform.start()
        baseline, baseline_url = start_baseline(infra["REDIS_URL"], RUN)
        try:
            seeded = await seed_catalog(platform.gateway_url)
            gateway = platform.gateway_url
            vip = {"BENCH_AUTH": auth(level="vip")["Authorization"]}
            order = {
                **vip,
                "BENCH_METHOD": "POST",
                "BENCH_IDEMPOTENT": "1",
                "BENCH_BODY": f'{{"sku_id":"{seeded["sold_out_sku"]}","quantity":1,"recipient":{{}}}}',
            }
            lua = {"BENCH_METHOD": "POST", "BENCH_BODY": "{}"}
            results: dict[str, Any] = {"connections": CONNECTIONS, "seconds": SECONDS}
            results["baseline_get"] = measure(f"{baseline_url}/ping", script)
            pids = {name: p.process.pid for name, p in platform.processes.items() if p.process}
            browse = {"gateway": pids["gateway"], "catalog": pids["catalog"]}
            results["catalog_tree"] = measure(f"{gateway}/api/v1/catalog/tree", script, profile=browse)
            results["catalog_tree_direct"] = measure(f"{platform.url('catalog')}/api/v1/catalog/tree", script)
            results["product_detail"] = measure(
                f"{gateway}/api/v1/catalog/products/{seeded['product_id']}", script, vip, profile=browse
            )
            results["product_search"] = measure(
                f"{gateway}/api/v1/catalog/products?q=%E7%A7%BB%E5%8A%A8", script, profile=browse
            )
            results["baseline_lua"] = measure(f"{baseline_url}/hold", script, lua)
            results["sold_out_order"] = measure(
                f"{gateway}/api/v1/orders", script, order, profile={"gateway": pids["gateway"], "order": pids["order"]}
            )
            # The baselines once more at the end: the machine is shared, so each ratio is against
            # the better of the two measurements of its ceiling.
            results["baseline_get_again"] = measure(f"{baseline_url}/ping", script)
            results["baseline_lua_again"] = measure(f"{baseline_url}/hold", script, lua)
        finally:
            baseline.terminate()
            baseline.wait(10)
            platform.stop()
    get_ceiling = max(results["baseline_get"]["per_second"], results["baseline_get_again"]["per_second"])
    lua_ceiling = max(results["baseline_lua"]["per_second"], results["baseline_lua_again"]["per_second"])
    results["ratios"] = {
        "catalog_tree": round(results["catalog_tree"]["per_second"] / get_ceiling, 3),
        "product_detail": round(results["product_detail"]["per_second"] / get_ceiling, 3),
        "product_search": round(results["product_search"]["per_second"] / get_ceiling, 3),
        "sold_out_order": round(results["sold_out_order"]["per_second"] / lua_ceiling, 3),
    }
    return results


if __name__ == "__main__":
    print(asyncio.run(main()))
