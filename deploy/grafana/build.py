# ruff: noqa: E501  (a PromQL query reads best on one line)
"""Kameng's Grafana dashboards, written as code: `python -m deploy.grafana.build` writes
`deploy/grafana/dashboards/*.json` (and the copies `k8s/base/monitoring/` provisions).
tests/unit/test_metrics_rules.py fails when the JSON files differ from what this produces, or
when a panel queries a metric no Kameng process defines.

Dashboards: the platform overview, the order saga, and one per process. Every query reads the
Prometheus datasource provisioned with uid `prometheus` (deploy/grafana/provisioning/).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "deploy" / "grafana" / "dashboards"
K8S_OUT = ROOT / "k8s" / "base" / "monitoring" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
SERVICES = ("identity", "wallet", "catalog", "order", "fulfilment", "support", "assistant")
API = 'job="gateway",path=~"/api/.*"'


def panel(
    title: str, targets: list[tuple[str, str]], *, unit: str = "short", kind: str = "timeseries"
) -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def stat(title: str, expr: str, *, unit: str = "short") -> dict[str, Any]:
    return panel(title, [(expr, "")], unit=unit, kind="stat")


def row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def dashboard(uid: str, title: str, panels: list[dict[str, Any]], tags: list[str]) -> dict[str, Any]:
    """Lays panels out left to right, two per line (stats four per line, rows full width)."""
    x = y = 0
    line_height = 0
    placed = []
    for i, p in enumerate(panels):
        w, h = (24, 1) if p["type"] == "row" else (6, 4) if p["type"] == "stat" else (12, 8)
        if x + w > 24:
            x, y = 0, y + line_height
            line_height = 0
        placed.append({**p, "id": i + 1, "gridPos": {"x": x, "y": y, "w": w, "h": h}})
        x += w
        line_height = max(line_height, h)
        if w == 24:
            x, y, line_height = 0, y + h, 0
    return {
        "uid": uid,
        "title": title,
        "tags": ["kameng", *tags],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [{"title": "Kameng", "type": "dashboards", "tags": ["kameng"], "asDropdown": True}],
        "panels": placed,
    }


# -- panels shared by several dashboards -----------------------------------------------------


def red(job: str) -> list[dict[str, Any]]:
    sel = f'job="{job}"'
    return [
        row("HTTP: rate, errors, duration per route"),
        panel(
            "Requests per second by route",
            [(f"sum by (method, path) (rate(kameng_http_requests_total{{{sel}}}[5m]))", "{{method}} {{path}}")],
            unit="reqps",
        ),
        panel(
            "Errors per second by status class",
            [
                (
                    f'sum by (path) (rate(kameng_http_requests_total{{{sel},status_code=~"5.."}}[5m]))',
                    "5xx {{path}}",
                ),
                (
                    f'sum by (path) (rate(kameng_http_requests_total{{{sel},status_code=~"4.."}}[5m]))',
                    "4xx {{path}}",
                ),
            ],
            unit="reqps",
        ),
        panel(
            "p95 duration by route",
            [
                (
                    "histogram_quantile(0.95, sum by (le, path) "
                    f"(rate(kameng_http_request_duration_seconds_bucket{{{sel}}}[5m])))",
                    "{{path}}",
                )
            ],
            unit="s",
        ),
        panel(
            "In flight",
            [(f"sum by (path) (kameng_http_requests_in_progress{{{sel}}})", "{{path}}")],
        ),
    ]


def consumers(job: str) -> list[dict[str, Any]]:
    sel = f'job="{job}"'
    return [
        row("Consumers"),
        panel(
            "Events applied per second by handler",
            [(f"sum by (handler) (rate(kameng_consumer_events_applied_total{{{sel}}}[5m]))", "{{handler}}")],
            unit="ops",
        ),
        panel(
            "Duplicates skipped, retries, dead-lettered (per 5 min)",
            [
                (
                    f"sum by (handler) (increase(kameng_consumer_duplicates_skipped_total{{{sel}}}[5m]))",
                    "dup {{handler}}",
                ),
                (
                    f"sum by (handler, reason) (increase(kameng_consumer_retries_total{{{sel}}}[5m]))",
                    "retry {{reason}} {{handler}}",
                ),
                (f"sum by (topic) (increase(kameng_consumer_dead_lettered_total{{{sel}}}[5m]))", "DLQ {{topic}}"),
            ],
        ),
        panel(
            "p95 handling duration by handler",
            [
                (
                    "histogram_quantile(0.95, sum by (le, handler) "
                    f"(rate(kameng_consumer_handling_duration_seconds_bucket{{{sel}}}[5m])))",
                    "{{handler}}",
                )
            ],
            unit="s",
        ),
        panel(
            "Consumer lag by group and partition",
            [
                (
                    f"max by (group, topic, partition) (kameng_consumer_lag_records{{{sel}}})",
                    "{{group}} p{{partition}}",
                )
            ],
        ),
    ]


def relay(job: str) -> list[dict[str, Any]]:
    sel = f'job="{job}"'
    return [
        row("Outbox relay"),
        panel(
            "Published per second by topic",
            [(f"sum by (topic) (rate(kameng_outbox_published_total{{{sel}}}[5m]))", "{{topic}}")],
            unit="ops",
        ),
        panel(
            "Publish latency (p50, p95 per batch)",
            [
                (
                    f"histogram_quantile(0.5, sum by (le) (rate(kameng_outbox_publish_duration_seconds_bucket{{{sel}}}[5m])))",
                    "p50",
                ),
                (
                    f"histogram_quantile(0.95, sum by (le) (rate(kameng_outbox_publish_duration_seconds_bucket{{{sel}}}[5m])))",
                    "p95",
                ),
            ],
            unit="s",
        ),
        panel(
            "Backlog (records not yet published)",
            [(f"max(kameng_outbox_backlog_records{{{sel}}})", "backlog")],
        ),
        panel(
            "Age of the oldest unsent record",
            [(f"max(kameng_outbox_oldest_pending_age_seconds{{{sel}}})", "oldest")],
            unit="s",
        ),
    ]


def saga_counts() -> list[dict[str, Any]]:
    return [
        panel(
            "Orders per minute by stage",
            [('sum by (stage) (rate(kameng_orders_total{job="order"}[5m])) * 60', "{{stage}}")],
            unit="short",
        ),
        panel(
            "Orders per minute by stage and delivery mode",
            [
                (
                    'sum by (stage, delivery_mode) (rate(kameng_orders_total{job="order"}[5m])) * 60',
                    "{{stage}} {{delivery_mode}}",
                )
            ],
        ),
    ]


def pay_to_delivered() -> list[dict[str, Any]]:
    hist = 'kameng_order_pay_to_delivered_seconds_bucket{job="order"}'
    return [
        panel(
            "Pay → delivered (p50, p95, p99) by delivery mode",
            [
                (
                    f"histogram_quantile({q}, sum by (le, delivery_mode) (rate({hist}[5m])))",
                    f"p{int(q * 100)} {{{{delivery_mode}}}}",
                )
                for q in (0.5, 0.95, 0.99)
            ],
            unit="s",
        ),
        panel(
            "Delivered within 3 s (SLO 99 %, auto and direct)",
            [
                (
                    'sum(rate(kameng_order_pay_to_delivered_seconds_bucket{delivery_mode!="manual",le="3.0"}[1h]))'
                    ' / sum(rate(kameng_order_pay_to_delivered_seconds_count{delivery_mode!="manual"}[1h]))',
                    "within 3 s (1 h)",
                )
            ],
            unit="percentunit",
        ),
        panel(
            "Delivery SLO burn rate (1 = spending the budget exactly)",
            [
                ("kameng:pay_to_delivered_slow_ratio:rate1h / 0.01", "1 h"),
                ("kameng:pay_to_delivered_slow_ratio:rate6h / 0.01", "6 h"),
            ],
        ),
    ]


def stock_and_queue() -> list[dict[str, Any]]:
    return [
        panel(
            "Card keys available per SKU",
            [("max by (sku) (kameng_card_key_stock_available)", "{{sku}}")],
        ),
        panel("Manual deliveries waiting for staff", [("max(kameng_manual_queue_tasks)", "tasks")]),
    ]


# -- the dashboards --------------------------------------------------------------------------


def overview() -> dict[str, Any]:
    jobs = "|".join((*SERVICES, "gateway"))
    return dashboard(
        "kameng-overview",
        "Kameng / Platform overview",
        [
            row("SLOs"),
            stat(
                "API availability (30 d, SLO 99.9 %)",
                f'1 - (sum(increase(kameng_http_requests_total{{{API},status_code=~"5.."}}[30d]))'
                f" / sum(increase(kameng_http_requests_total{{{API}}}[30d])))",
                unit="percentunit",
            ),
            stat(
                "Delivered within 3 s (30 d, SLO 99 %)",
                'sum(increase(kameng_order_pay_to_delivered_seconds_bucket{delivery_mode!="manual",le="3.0"}[30d]))'
                ' / sum(increase(kameng_order_pay_to_delivered_seconds_count{delivery_mode!="manual"}[30d]))',
                unit="percentunit",
            ),
            stat("Availability burn rate (1 h)", "kameng:api_error_ratio:rate1h / 0.001"),
            stat("Delivery burn rate (1 h)", "kameng:pay_to_delivered_slow_ratio:rate1h / 0.01"),
            row("Traffic and errors"),
            panel(
                "Public API requests per second by status class",
                [
                    (
                        f'sum by (class) (label_replace(rate(kameng_http_requests_total{{{API}}}[5m]), "class", "${{1}}xx", "status_code", "(.).."))',
                        "{{class}}",
                    )
                ],
                unit="reqps",
            ),
            panel(
                "5xx ratio by process",
                [
                    (
                        'sum by (job) (rate(kameng_http_requests_total{status_code=~"5.."}[5m]))'
                        " / sum by (job) (rate(kameng_http_requests_total[5m]))",
                        "{{job}}",
                    )
                ],
                unit="percentunit",
            ),
            panel(
                "p95 request duration by process",
                [
                    (
                        "histogram_quantile(0.95, sum by (le, job) (rate(kameng_http_request_duration_seconds_bucket[5m])))",
                        "{{job}}",
                    )
                ],
                unit="s",
            ),
            panel("Processes up", [(f'sum by (job) (up{{job=~"{jobs}"}})', "{{job}}")]),
            row("Event bus"),
            panel(
                "Consumer lag by service",
                [
                    (
                        "sum by (job) (max by (job, group, topic, partition) (kameng_consumer_lag_records))",
                        "{{job}}",
                    )
                ],
            ),
            panel(
                "Oldest unsent outbox record by service",
                [("max by (job) (kameng_outbox_oldest_pending_age_seconds)", "{{job}}")],
                unit="s",
            ),
            panel(
                "Dead-lettered per 10 min by topic",
                [("sum by (topic) (increase(kameng_consumer_dead_lettered_total[10m]))", "{{topic}}")],
            ),
            panel(
                "Events applied per second by service",
                [("sum by (job) (rate(kameng_consumer_events_applied_total[5m]))", "{{job}}")],
                unit="ops",
            ),
            row("Business"),
            *saga_counts()[:1],
            pay_to_delivered()[0],
            panel(
                "Top-ups per minute by outcome",
                [("sum by (outcome) (rate(kameng_topups_total[5m])) * 60", "{{outcome}}")],
            ),
            panel(
                "Webhook deliveries per minute by outcome",
                [("sum by (outcome) (rate(kameng_webhook_deliveries_total[5m])) * 60", "{{outcome}}")],
            ),
            *stock_and_queue(),
        ],
        ["overview"],
    )


def order_saga() -> dict[str, Any]:
    saga_groups = 'group=~"(order|fulfilment|wallet)[.].*"'
    return dashboard(
        "kameng-order-saga",
        "Kameng / Order saga",
        [
            row("Orders"),
            *saga_counts(),
            row("Pay → delivered"),
            *pay_to_delivered(),
            panel(
                "Refunded share of paid orders (1 h)",
                [
                    (
                        'sum(increase(kameng_orders_total{stage="refunded"}[1h])) / sum(increase(kameng_orders_total{stage="paid"}[1h]))',
                        "refunded / paid",
                    )
                ],
                unit="percentunit",
            ),
            row("The saga's event flow (order, wallet, fulfilment)"),
            panel(
                "Consumer lag of the saga's groups",
                [(f"max by (group, topic) (kameng_consumer_lag_records{{{saga_groups}}})", "{{group}}")],
            ),
            panel(
                "p95 handling duration of the saga's handlers",
                [
                    (
                        "histogram_quantile(0.95, sum by (le, handler) (rate(kameng_consumer_handling_duration_seconds_bucket"
                        '{job=~"order|wallet|fulfilment"}[5m])))',
                        "{{handler}}",
                    )
                ],
                unit="s",
            ),
            panel(
                "Oldest unsent outbox record",
                [
                    (
                        'max by (job) (kameng_outbox_oldest_pending_age_seconds{job=~"order|wallet|fulfilment"})',
                        "{{job}}",
                    )
                ],
                unit="s",
            ),
            panel(
                "Retries and dead letters of the saga (per 5 min)",
                [
                    (
                        'sum by (job) (increase(kameng_consumer_retries_total{job=~"order|wallet|fulfilment"}[5m]))',
                        "retries {{job}}",
                    ),
                    (
                        'sum by (job) (increase(kameng_consumer_dead_lettered_total{job=~"order|wallet|fulfilment"}[5m]))',
                        "DLQ {{job}}",
                    ),
                ],
            ),
            row("Stock and manual work"),
            *stock_and_queue(),
        ],
        ["saga"],
    )


BUSINESS: dict[str, list[dict[str, Any]]] = {
    "order": [row("Orders"), *saga_counts(), *pay_to_delivered()],
    "fulfilment": [row("Stock and manual queue"), *stock_and_queue()],
    "wallet": [
        row("Top-ups"),
        panel(
            "Top-ups per minute by outcome",
            [("sum by (outcome) (rate(kameng_topups_total[5m])) * 60", "{{outcome}}")],
        ),
    ],
    "support": [
        row("Partner webhooks"),
        panel(
            "Webhook deliveries per minute by outcome",
            [("sum by (outcome) (rate(kameng_webhook_deliveries_total[5m])) * 60", "{{outcome}}")],
        ),
        panel(
            "Webhook failure ratio (15 min)",
            [
                (
                    'sum(rate(kameng_webhook_deliveries_total{outcome=~"failed|dead"}[15m]))'
                    ' / sum(rate(kameng_webhook_deliveries_total{outcome=~"delivered|failed|dead"}[15m]))',
                    "failed / all",
                )
            ],
            unit="percentunit",
        ),
    ],
}


def service(job: str) -> dict[str, Any]:
    panels = [*BUSINESS.get(job, []), *red(job)]
    if job != "gateway":
        panels += [*consumers(job), *relay(job)]
    return dashboard(f"kameng-{job}", f"Kameng / {job}", panels, ["service"])


def all_dashboards() -> dict[str, dict[str, Any]]:
    boards = {"overview": overview(), "order-saga": order_saga()}
    for job in (*SERVICES, "gateway"):
        boards[f"service-{job}"] = service(job)
    return boards


def rendered() -> dict[str, str]:
    """{file name: JSON text} of every dashboard."""
    return {
        f"{name}.json": json.dumps(board, indent=2, ensure_ascii=False) + "\n"
        for name, board in all_dashboards().items()
    }


def main() -> None:
    for directory in (OUT, K8S_OUT):
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.json"):
            old.unlink()
        for name, text in rendered().items():
            (directory / name).write_text(text)
    sys.stdout.write(f"wrote {len(rendered())} dashboards to {OUT} and {K8S_OUT}\n")


if __name__ == "__main__":
    main()
