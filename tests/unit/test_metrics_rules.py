"""The monitoring artefacts stay true to the code and to each other: every alert is unit-tested
(tests.yml) and explained (docs/slo.md); the k8s copies of the rules (ConfigMap and
PrometheusRule) and of the dashboards are exactly what their generators write; every metric a rule
or a dashboard reads is one a Kameng process defines; every dashboard query parses; every process
is scraped and watched."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar.testing import TestClient
from prometheus_client import REGISTRY

from deploy.grafana import build as dashboards
from deploy.prometheus import k8s as rules_k8s
from deploy.services import BACKEND_SERVICES
from tests.unit.test_metrics import service_app

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
TESTS = ROOT / "deploy" / "prometheus" / "tests.yml"
PROCESSES = {*BACKEND_SERVICES, "gateway"}


def rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def alerts() -> set[str]:
    return {r["alert"] for r in rules() if "alert" in r}


def test_every_alert_fires_in_a_promtool_test_and_has_a_runbook_section() -> None:
    cases = yaml.safe_load(TESTS.read_text())["tests"]
    fired = {t["alertname"] for case in cases for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    assert alerts() and alerts() <= fired, alerts() - fired
    slo = (ROOT / "docs" / "slo.md").read_text()
    for alert in alerts():
        assert f"### {alert}" in slo, f"docs/slo.md has no section for {alert}"
    for rule in rules():
        if "alert" in rule:
            assert rule["annotations"]["runbook_url"] == f"docs/slo.md#{rule['alert'].lower()}"
            assert rule["labels"]["severity"] in {"page", "ticket"}


def test_k8s_rules_and_dashboards_are_what_the_generators_write() -> None:
    for path, text in rules_k8s.rendered().items():
        assert path.read_text() == text, f"{path} drifted: run python -m deploy.prometheus.k8s"
    rule = yaml.safe_load(rules_k8s.PROMETHEUS_RULE.read_text())
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    for directory in (dashboards.OUT, dashboards.K8S_OUT):
        on_disk = {p.name: p.read_text() for p in directory.glob("*.json")}
        assert on_disk == dashboards.rendered(), f"{directory} drifted: run python -m deploy.grafana.build"
    kustomization = (ROOT / "k8s" / "base" / "kustomization.yaml").read_text()
    for name in dashboards.rendered():
        assert f"monitoring/dashboards/{name}" in kustomization


def defined_series() -> set[str]:
    """Every series name a Kameng process can expose (counters with `_total`, histograms with
    `_bucket`/`_count`/`_sum`)."""
    for service in BACKEND_SERVICES:
        importlib.import_module(f"services.{service}.app")  # defines each service's metrics
    with TestClient(service_app()) as client:
        client.get("/things/x")  # the HTTP middleware defines its metrics on the first request
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names |= {s.name for s in family.samples}
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_count", "_sum")}
    return names


def queries() -> list[str]:
    found = [r["expr"] for r in rules()]
    for board in dashboards.all_dashboards().values():
        found += [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    return found


def test_rules_and_dashboards_read_only_metrics_kameng_defines() -> None:
    defined = defined_series()
    recorded = {r["record"] for r in rules() if "record" in r}
    for expr in queries():
        for name in re.findall(r"\bkameng[_:][a-z0-9_:]+", expr):
            assert name in defined or name in recorded, f"{name} (in {expr!r}) is defined nowhere"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing (make check-rules needs it too)")
def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    exprs = [t["expr"] for b in dashboards.all_dashboards().values() for p in b["panels"] for t in p.get("targets", [])]
    recording = [{"record": f"q{i}", "expr": e} for i, e in enumerate(exprs)]
    as_rules = {"groups": [{"name": "dashboards", "rules": recording}]}
    (tmp_path / "q.yml").write_text(yaml.safe_dump(as_rules))
    checked = subprocess.run(["promtool", "check", "rules", str(tmp_path / "q.yml")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_process_is_scraped_watched_and_has_a_dashboard() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {c["job_name"]: c["static_configs"][0]["targets"] for c in compose["scrape_configs"]}
    assert set(jobs) >= PROCESSES
    assert jobs["gateway"] == ["gateway:9100"]  # the internal metrics port, never the public one
    target_down = next(r for r in rules() if r.get("alert") == "KamengTargetDown")
    watched = set(re.search(r'job=~"([^"]+)"', target_down["expr"]).group(1).split("|"))  # type: ignore[union-attr]
    assert watched == PROCESSES
    assert set(dashboards.SERVICES) == set(BACKEND_SERVICES)
    assert {f"service-{p}.json" for p in PROCESSES} <= set(dashboards.rendered())
    compose_file = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert compose_file["gateway"]["environment"]["METRICS_PORT"] == "9100"
    assert not any("9100" in str(p) for p in compose_file["gateway"].get("ports", []))
