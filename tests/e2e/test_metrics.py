"""A real Prometheus (Debian's `/usr/bin/prometheus`) scrapes the running platform while buyers
place orders; its HTTP API shows the delivered-orders counter and the pay→delivered histogram
moving, consumer lag reported per partition, and every service and the gateway's internal
metrics port up. The public door answers 404 for /metrics."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from deploy.platform import Platform
from deploy.services import BACKEND_SERVICES
from deploy.stack import die_with_parent, free_port
from tests.flows import Flows

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PRICE = 1000

pytestmark = pytest.mark.skipif(
    not Path(PROMETHEUS).exists(), reason="Prometheus is not installed (Debian: apt-get install prometheus)"
)


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        answer.raise_for_status()
        body = answer.json()
        assert body["status"] == "success", body
        return body["data"]["result"]  # type: ignore[no-any-return]

    def scalar(self, promql: str) -> float:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else 0.0

    async def until(self, promql: str, ok: Any, timeout: float = 45) -> float:
        deadline = time.monotonic() + timeout
        while True:
            seen = self.scalar(promql)
            if ok(seen):
                return seen
            if time.monotonic() > deadline:
                raise AssertionError(f"{promql} stayed at {seen}")
            await asyncio.sleep(0.5)


@pytest.fixture
def gateway_metrics_port(platform: Platform) -> int:
    """The gateway's internal metrics port (deploy/services.py gives it one, as in k8s)."""
    return platform.ports["gateway_metrics"]


@pytest.fixture
def prometheus(platform: Platform, gateway_metrics_port: int) -> Iterator[Prometheus]:
    targets = [(name, platform.processes[name].port) for name in BACKEND_SERVICES]
    targets.append(("gateway", gateway_metrics_port))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": name, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]} for name, port in targets
        ],
    }
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="kameng-prometheus-") as tmp:
        (Path(tmp) / "prometheus.yml").write_text(yaml.safe_dump(config))
        log = (platform.logs_dir / "prometheus.log").open("ab")
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={tmp}/prometheus.yml",
                f"--storage.tsdb.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"Prometheus did not start; see {platform.logs_dir / 'prometheus.log'}")
                time.sleep(0.2)
            yield Prometheus(url)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


@pytest.fixture
async def flows(platform: Platform, infra: dict[str, str]) -> AsyncIterator[Flows]:
    f = Flows(platform.gateway_url, infra["KAFKA_BOOTSTRAP_SERVERS"], concurrency=20)
    yield f
    await f.close()


async def test_prometheus_sees_orders_delivered_pay_to_delivered_time_and_consumer_lag(
    platform: Platform, prometheus: Prometheus, flows: Flows
) -> None:
    jobs = {*BACKEND_SERVICES, "gateway"}
    await prometheus.until("count(up == 1)", lambda n: n == len(jobs))
    assert {r["metric"]["job"] for r in prometheus.query("up == 1")} == jobs

    delivered = 'sum(kameng_orders_total{stage="delivered"}) or vector(0)'
    timed = "sum(kameng_order_pay_to_delivered_seconds_count) or vector(0)"
    before_delivered = prometheus.scalar(delivered)
    before_timed = prometheus.scalar(timed)

    sku_id = await flows.create_sku(price_cents=PRICE)
    await flows.import_keys(sku_id, [f"MET-{sku_id[:8]}-{i}" for i in range(6)])
    await flows.wait_orderable(sku_id, 6)
    buyers = await flows.new_buyers(3, 2 * PRICE)
    placed = [await flows.order(buyer, sku_id) for buyer in buyers]
    assert [p.status_code for p in placed] == [201] * 3, [p.text for p in placed]
    for buyer, order in zip(buyers, placed, strict=True):
        assert (await flows.wait_final(buyer, order.json()["order_id"]))["status"] == "delivered"

    # Consumer lag: a value per (group, topic, partition) of every service, sampled recently.
    await prometheus.until("count(kameng_consumer_lag_records)", lambda n: n > 0)
    lag = prometheus.query("kameng_consumer_lag_records")
    assert {r["metric"]["job"] for r in lag} == set(BACKEND_SERVICES)
    order_groups = {r["metric"]["group"] for r in lag if r["metric"]["job"] == "order"}
    assert order_groups and all(g.startswith("order.") for g in order_groups)
    assert all(r["metric"]["partition"].isdigit() for r in lag)
    assert prometheus.scalar("time() - max(kameng_consumer_lag_sampled_timestamp_seconds)") < 60

    # RED per route template reached Prometheus from the services and the gateway's own port.
    routes = {r["metric"]["path"] for r in prometheus.query('kameng_http_requests_total{job="order"}')}
    assert "/api/v1/orders" in routes
    # No order or buyer id in any label of any Kameng series.
    ids = {p.json()["order_id"] for p in placed} | set(buyers)
    for series in prometheus.query('{__name__=~"kameng_.+"}'):
        values = set(series["metric"].values())
        assert not values & ids, series["metric"]
    assert prometheus.scalar('sum(kameng_http_requests_total{job="gateway",path="/api/v1/{path}"})') > 0
    # The relay published and the outbox backlog is reported.
    assert prometheus.scalar('sum(kameng_outbox_published_total{job="order"})') > 0
    assert prometheus.query('kameng_outbox_oldest_pending_age_seconds{job="order"}')

    # Never on the public door.
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=10) as public:
        assert (await public.get("/metrics")).status_code == 404

    # Business signals: delivered orders and the pay→delivered histogram.
    assert await prometheus.until(delivered, lambda v: v >= before_delivered + 3) >= before_delivered + 3
    assert await prometheus.until(timed, lambda v: v >= before_timed + 3) >= before_timed + 3
    # The histogram's buckets moved too, so quantiles over it mean something.
    assert prometheus.scalar('sum(kameng_order_pay_to_delivered_seconds_bucket{le="+Inf"})') >= before_timed + 3
    assert prometheus.scalar("sum(kameng_order_pay_to_delivered_seconds_sum)") > 0
