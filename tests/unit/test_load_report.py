"""`make load`'s pure half (tests/bench/load_report.py): the request mix, and reading Locust's CSVs
(headers as Locust 2.x writes them) into the summary and the plotted history."""

from __future__ import annotations

from pathlib import Path

from tests.bench.load_report import MIX, history, markdown, mix_shares, summarise

PCTS = '"50%","66%","75%","80%","90%","95%","98%","99%","99.9%","99.99%","100%"'

STATS = f""""Type","Name","Request Count","Failure Count","Median Response Time","Average Response Time","Min Response Time","Max Response Time","Average Content Size","Requests/s","Failures/s",{PCTS}
"GET","/api/v1/catalog/tree",900,0,12,15.5,3.1,210.4,4000.0,15.0,0.0,12,14,16,18,25,40,60,90,200,210,210
"POST","/api/v1/orders",40,2,150,180.2,60.0,950.0,300.0,0.6667,0.0333,150,170,190,200,300,420,600,800,950,950,950
"","Aggregated",940,2,13,21.3,3.1,950.0,3900.0,15.6667,0.0333,13,15,17,19,30,60,120,300,900,950,950
"""  # noqa: E501

HISTORY = f""""Timestamp","User Count","Type","Name","Requests/s","Failures/s",{PCTS},"Total Request Count","Total Failure Count","Total Median Response Time","Total Average Response Time","Total Min Response Time","Total Max Response Time","Total Average Content Size"
"1700000000","0","","Aggregated","0.000000","0.000000","N/A","N/A","N/A","N/A","N/A","N/A","N/A","N/A","N/A","N/A","N/A",0,0,0,0.0,0,0,0
"1700000001","10","GET","/api/v1/catalog/tree","9.0","0.0","11","12","13","14","15","16","17","18","19","20","21",9,0,11,11.0,3,21,4000
"1700000001","10","","Aggregated","10.000000","0.500000","12","13","14","15","16","40","50","80","90","95","99",10,1,12,12.0,3,99,3900
"1700000003","20","","Aggregated","20.000000","0.000000","14","15","16","17","18","45","55","85","90","95","99",30,1,13,13.0,3,99,3900
"""  # noqa: E501


def test_the_mix_is_issue_13_target_5() -> None:
    assert sum(MIX.values()) == 100
    assert mix_shares() == {"browse": 90.0, "quote_and_order": 8.0, "order_center": 2.0}
    assert mix_shares({"tree": 1, "product": 1, "search": 0, "quote": 1, "order": 1, "order_center": 0}) == {
        "browse": 50.0,
        "quote_and_order": 50.0,
        "order_center": 0.0,
    }


def test_summary_per_request_type_and_total(tmp_path: Path) -> None:
    (tmp_path / "stats.csv").write_text(STATS)
    (tmp_path / "failures.csv").write_text(
        '"Method","Name","Error","Occurrences","First Seen","Last Seen"\n'
        '"POST","/api/v1/orders","409 out-of-stock",2,1700000001,1700000002\n'
    )
    s = summarise(tmp_path / "stats.csv", tmp_path / "failures.csv")
    assert s["total"] == {
        "requests": 940,
        "failures": 2,
        "per_second": 15.7,
        "p50_ms": 13.0,
        "p95_ms": 60.0,
        "p99_ms": 300.0,
        "avg_ms": 21.3,
        "max_ms": 950,
    }
    order = s["requests"]["POST /api/v1/orders"]
    assert (order["requests"], order["failures"], order["p50_ms"], order["p95_ms"], order["p99_ms"]) == (
        40,
        2,
        150.0,
        420.0,
        800.0,
    )
    assert set(s["requests"]) == {"GET /api/v1/catalog/tree", "POST /api/v1/orders"}
    assert s["errors"] == [{"request": "POST /api/v1/orders", "error": "409 out-of-stock", "count": 2}]
    # A run without failures has no failures file to read.
    assert summarise(tmp_path / "stats.csv", tmp_path / "missing.csv")["errors"] == []


def test_history_reads_one_name_and_treats_na_as_zero(tmp_path: Path) -> None:
    (tmp_path / "history.csv").write_text(HISTORY)
    h = history(tmp_path / "history.csv")
    assert h["t"] == [0.0, 1.0, 3.0]
    assert h["users"] == [0.0, 10.0, 20.0]
    assert h["rps"] == [0.0, 10.0, 20.0]
    assert h["fps"] == [0.0, 0.5, 0.0]
    assert (h["p50"], h["p95"], h["p99"]) == ([0.0, 12.0, 14.0], [0.0, 40.0, 45.0], [0.0, 80.0, 85.0])
    assert history(tmp_path / "history.csv", "/api/v1/catalog/tree")["p99"] == [18.0]


def test_markdown_has_a_row_per_request_and_the_total(tmp_path: Path) -> None:
    (tmp_path / "stats.csv").write_text(STATS)
    summary = {
        "run": {"started": "x", "users": 5, "spawn_rate": 5, "duration": "5s", "wait": [0.1, 0.5], "buyers": 5},
        "mix_shares": mix_shares(),
        **summarise(tmp_path / "stats.csv"),
    }
    text = markdown(summary)
    assert "| POST /api/v1/orders | 40 | 2 | 0.7 | 150 | 420 | 800 | 950 |" in text
    assert "| **total** | 940 | 2 | 15.7 | 13 | 60 | 300 | 950 |" in text
