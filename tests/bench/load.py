"""`make load` / `python -m tests.bench.load [--users N] [--duration 60s] ...`: a mixed, realistic
load on the whole platform with Locust (issue 13, target 5).

Starts the embedded stack and every service with the gateway (the rate limits raised: all users
come from one address; they are still counted, so the work is the same), seeds a catalog
(tests/bench/bench_hot_paths.seed_catalog: 10 scenarios, 40 products, 80 SKUs) and one SKU with
card keys to sell (tests/flows.py), opens and funds the buyers, then runs Locust headless on
tests/bench/locustfile.py: 90 % browsing, 8 % quotes and orders, 2 % order-center reads
(tests/bench/load_report.MIX). Writes under .kameng/load/<timestamp>/: Locust's HTML report and
CSVs, summary.json and summary.md (requests/s, p50/p95/p99 per request type, failures, answers by
status) and load.png (latency percentiles and throughput over time).

Not a test: nothing passes or fails on a number. Locust runs in its own process (gevent would
patch this one) on the same two cores as the platform, which it shares with the database, the
broker and eight service processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from deploy.platform import Platform, repo_root
from deploy.stack import EmbeddedStack
from tests.bench.bench_hot_paths import seed_catalog, unlimited_env
from tests.bench.load_report import MIX, markdown, mix_shares, plot, summarise
from tests.flows import FINAL, Flows
from tests.helpers import auth, token_for

PRICE_CENTS = 100
SEARCHES = ["移动", "话费", "中国移动", "全国通用", "联通"]


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.bench.load", description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=50, help="concurrent Locust users (default 50)")
    p.add_argument("--spawn-rate", type=float, default=10, help="users started per second (default 10)")
    p.add_argument("--duration", default="60s", help="Locust --run-time, e.g. 60s, 5m (default 60s)")
    p.add_argument("--buyers", type=int, default=50, help="funded buyers the users share (default 50)")
    p.add_argument("--keys", type=int, default=3000, help="card keys on the SKU being sold (default 3000)")
    p.add_argument("--wait", type=float, nargs=2, default=(0.1, 0.5), metavar=("MIN", "MAX"), help="think time, s")
    return p.parse_args(argv)


def product_ids(tree: Any) -> list[str]:
    """Every product id in the catalog tree, however deep it nests them."""
    found: list[str] = []
    if isinstance(tree, dict):
        if isinstance(tree.get("product_id"), str):
            found.append(tree["product_id"])
        for value in tree.values():
            found += product_ids(value)
    elif isinstance(tree, list):
        for value in tree:
            found += product_ids(value)
    return sorted(set(found))


async def seed(gateway: str, bootstrap: str, args: argparse.Namespace) -> dict[str, Any]:
    await seed_catalog(gateway)
    flows = Flows(gateway, bootstrap, concurrency=32)
    try:
        sku_id = await flows.create_sku(name="1元 体验卡", price_cents=PRICE_CENTS)
        codes = [f"LOAD-{sku_id[:6]}-{i:06d}" for i in range(args.keys)]
        report = await flows.import_keys(sku_id, codes)
        assert report["accepted"] == args.keys, report
        await flows.wait_orderable(sku_id, args.keys)
        # Funded for 1,000 orders each: a run never runs a buyer dry, so a 402 is a real failure.
        buyers = await flows.new_buyers(args.buyers, PRICE_CENTS * 1000)
        tree = (await flows.call("GET", "/api/v1/catalog/tree", expect=200)).json()
    finally:
        await flows.close()
    products = product_ids(tree)
    assert len(products) >= 40, f"the tree lists {len(products)} products"
    return {
        "sku_id": sku_id,
        "products": products,
        "searches": SEARCHES,
        "buyers": [{"user_id": u, "token": token_for(u)} for u in buyers],
        "wait": list(args.wait),
    }


async def settle(gateway: str, buyers: list[str], timeout: float = 120) -> dict[str, Any]:
    """After the load: the buyers' orders by status once none is still moving (or `timeout`), and
    how long that took; every order a run placed should end delivered."""
    flows = Flows(gateway, "", concurrency=16)
    start = time.monotonic()
    try:
        while True:
            counts: Counter[str] = Counter()
            for user_id in buyers:
                page = 1
                while True:
                    params: dict[str, str | int] = {"page": page, "page_size": 200}
                    listed = (
                        await flows.call("GET", "/api/v1/orders", params=params, headers=auth(user_id), expect=200)
                    ).json()
                    counts.update(o["status"] for o in listed["items"])
                    if page * 200 >= listed["total"]:
                        break
                    page += 1
            waited = time.monotonic() - start
            if set(counts) <= FINAL or waited > timeout:
                return {"orders": dict(counts), "settled_after_s": round(waited, 1), "all_final": set(counts) <= FINAL}
            await asyncio.sleep(1)
    finally:
        await flows.close()


def run_locust(gateway: str, setup: dict[str, Any], out: Path, args: argparse.Namespace) -> int:
    setup_file = out / "setup.json"
    setup_file.write_text(json.dumps({**setup, "statuses_file": str(out / "statuses.json")}))
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(Path(__file__).with_name("locustfile.py")),
        "--headless",
        "--host",
        gateway,
        "-u",
        str(args.users),
        "-r",
        str(args.spawn_rate),
        "-t",
        args.duration,
        "--stop-timeout",
        "10",
        "--csv",
        str(out / "locust"),
        "--csv-full-history",
        "--html",
        str(out / "report.html"),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    root = repo_root()
    env = {**os.environ, "KAMENG_LOAD_SETUP": str(setup_file), "PYTHONPATH": str(root)}
    with (out / "locust.log").open("w") as log:
        # Locust exits 1 when any request failed; the summary reports them, so that is no error here.
        return subprocess.run(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, check=False).returncode


def main(argv: list[str]) -> int:
    args = parse(argv)
    started = time.strftime("%Y%m%d-%H%M%S")
    out = Path(".kameng/load") / started
    out.mkdir(parents=True, exist_ok=True)
    with EmbeddedStack(run_dir=out / "stack") as infra:
        platform = Platform(base_env=unlimited_env(infra), logs_dir=out / "platform")
        platform.start()
        try:
            print(f"seeding the platform at {platform.gateway_url}", flush=True)
            setup = asyncio.run(seed(platform.gateway_url, infra["KAFKA_BOOTSTRAP_SERVERS"], args))
            print(f"locust: {args.users} users for {args.duration}", flush=True)
            code = run_locust(platform.gateway_url, setup, out, args)
            print("waiting for the orders to settle", flush=True)
            settled = asyncio.run(settle(platform.gateway_url, [b["user_id"] for b in setup["buyers"]]))
        finally:
            platform.stop()
    summary: dict[str, Any] = {
        "run": {
            "started": started,
            "users": args.users,
            "spawn_rate": args.spawn_rate,
            "duration": args.duration,
            "wait": list(args.wait),
            "buyers": args.buyers,
            "keys": args.keys,
            "locust_exit": code,
        },
        "mix": MIX,
        "mix_shares": mix_shares(),
        **summarise(out / "locust_stats.csv", out / "locust_failures.csv"),
        "after_the_load": settled,
    }
    statuses_file = out / "statuses.json"
    if statuses_file.exists():
        by_request: dict[str, dict[str, int]] = {}
        for key, n in json.loads(statuses_file.read_text()).items():
            request, _, status = key.rpartition(" ")
            by_request.setdefault(request, {})[status] = n
        summary["statuses"] = by_request
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    (out / "summary.md").write_text(markdown(summary))
    title = f"Kameng mixed load: {args.users} users, {args.duration} (all requests, 10 s window percentiles)"
    plot(out / "locust_stats_history.csv", out / "load.png", title)
    print(markdown(summary))
    print(f"results in {out}/ (report.html, locust_*.csv, summary.json, summary.md, load.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
