"""The pure half of `make load` (tests/bench/load.py): the request mix the Locust users follow,
and reading Locust's CSV output into a summary and a plot.

Kept apart from the locustfile so it can be imported (and unit tested) without Locust, whose
import monkey-patches the standard library with gevent.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Weight of each task (Locust's `@task(weight)`), out of 100: the mix of target 5 of issue 13,
# 90 % browsing, 8 % quotes and orders (half each), 2 % order-center reads (docs/scaling.md).
MIX: dict[str, int] = {
    "tree": 40,
    "product": 30,
    "search": 20,
    "quote": 4,
    "order": 4,
    "order_center": 2,
}
GROUPS: dict[str, tuple[str, ...]] = {
    "browse": ("tree", "product", "search"),
    "quote_and_order": ("quote", "order"),
    "order_center": ("order_center",),
}

PERCENTILES = ("50%", "95%", "99%")


def mix_shares(mix: Mapping[str, int] = MIX) -> dict[str, float]:
    """Each group's share of requests in percent, as Locust picks tasks in proportion to weight."""
    total = sum(mix.values())
    return {group: round(100 * sum(mix[t] for t in tasks) / total, 2) for group, tasks in GROUPS.items()}


def _number(text: str) -> float:
    # Locust writes "N/A" for a percentile it has no sample for.
    try:
        return float(text)
    except ValueError:
        return 0.0


def summarise(stats_csv: Path, failures_csv: Path | None = None) -> dict[str, Any]:
    """Per request type (method and name) and in total: requests, failures, requests/s and the
    p50/p95/p99/max latency in ms, from Locust's `<prefix>_stats.csv`; the failures by error from
    `<prefix>_failures.csv`."""
    requests: dict[str, dict[str, Any]] = {}
    total: dict[str, Any] = {}
    with stats_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            entry = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "per_second": round(_number(row["Requests/s"]), 1),
                **{f"p{p.rstrip('%')}_ms": _number(row[p]) for p in PERCENTILES},
                "avg_ms": round(_number(row["Average Response Time"]), 1),
                "max_ms": round(_number(row["Max Response Time"])),
            }
            if row["Name"] == "Aggregated":
                total = entry
            else:
                requests[f"{row['Type']} {row['Name']}".strip()] = entry
    errors: list[dict[str, Any]] = []
    if failures_csv is not None and failures_csv.exists():
        with failures_csv.open(newline="") as f:
            errors = [
                {"request": f"{r['Method']} {r['Name']}", "error": r["Error"], "count": int(r["Occurrences"])}
                for r in csv.DictReader(f)
            ]
    return {"total": total, "requests": requests, "errors": errors}


def history(history_csv: Path, name: str = "Aggregated") -> dict[str, list[float]]:
    """One request type's rows of `<prefix>_stats_history.csv` (Locust writes one per second
    with --csv-full-history; its percentiles are over a sliding window, not the run so far) as
    columns: seconds since the first row, users, requests/s, failures/s, p50/p95/p99 ms."""
    columns: dict[str, list[float]] = {k: [] for k in ("t", "users", "rps", "fps", "p50", "p95", "p99")}
    start: float | None = None
    with history_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["Name"] != name:
                continue
            at = _number(row["Timestamp"])
            start = at if start is None else start
            columns["t"].append(at - start)
            columns["users"].append(_number(row["User Count"]))
            columns["rps"].append(_number(row["Requests/s"]))
            columns["fps"].append(_number(row["Failures/s"]))
            for p in PERCENTILES:
                columns[f"p{p.rstrip('%')}"].append(_number(row[p]))
    return columns


def plot(history_csv: Path, out: Path, title: str) -> None:
    """Latency percentiles (top) and throughput with the user count (bottom) over the run."""
    import matplotlib

    matplotlib.use("Agg")  # no display; chosen before pyplot is imported
    import matplotlib.pyplot as plt

    h = history(history_csv)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    for p, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
        top.plot(h["t"], h[p], style, label=p)
    # Log scale: browsing answers in milliseconds, orders (which wait for the wallet) in hundreds.
    top.set_yscale("log", nonpositive="mask")
    top.set_ylabel("latency (ms, log)")
    top.set_title(title, fontsize=10)
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    bottom.plot(h["t"], h["rps"], label="requests/s")
    bottom.plot(h["t"], h["fps"], label="failures/s", color="tab:red")
    bottom.set_ylabel("per second")
    bottom.set_xlabel("seconds")
    bottom.grid(alpha=0.3)
    users = bottom.twinx()
    users.plot(h["t"], h["users"], color="tab:gray", alpha=0.6, label="users")
    users.set_ylabel("users")
    lines = bottom.get_legend_handles_labels()[0] + users.get_legend_handles_labels()[0]
    bottom.legend(lines, [str(line.get_label()) for line in lines], loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def markdown(summary: Mapping[str, Any]) -> str:
    """The summary as the table docs/benchmarks.md quotes."""
    run = summary["run"]
    lines = [
        f"# Load run {run['started']}",
        "",
        f"{run['users']} users (spawn {run['spawn_rate']}/s), {run['duration']}, think time "
        f"{run['wait']} s, {run['buyers']} funded buyers; mix {json.dumps(summary['mix_shares'])}",
        "",
        "| request | requests | failures | req/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [*summary["requests"].items(), ("**total**", summary["total"])]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['requests']:,} | {r['failures']:,} | {r['per_second']:,} | {r['p50_ms']:g} | "
            f"{r['p95_ms']:g} | {r['p99_ms']:g} | {r['max_ms']:g} |"
        )
    if summary.get("statuses"):
        # Locust's stats CSV is its last once-a-second snapshot; the users count answers to the end,
        # so these totals can be a second's worth of requests higher than the table's.
        lines += ["", "Answers by status (counted by the users up to the end, the table up to its last second):", ""]
        lines += [f"- {name}: {json.dumps(s)}" for name, s in sorted(summary["statuses"].items())]
    if summary.get("after_the_load"):
        after = summary["after_the_load"]
        lines += [
            "",
            f"The buyers' orders after the load: {json.dumps(after['orders'])}, "
            f"{'all final' if after['all_final'] else 'NOT all final'} {after['settled_after_s']} s after it ended.",
        ]
    if summary["errors"]:
        lines += ["", "Errors:", ""]
        lines += [f"- {e['request']}: {e['error']} × {e['count']}" for e in summary["errors"]]
    return "\n".join(lines) + "\n"
