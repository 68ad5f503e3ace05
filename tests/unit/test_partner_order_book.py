"""The partner example's OrderBook (examples/partner/consumer.py): what docs/partner-events.md tells
receivers to do, deduplicate on `event_id` and order by `occurred_at`, not by arrival."""

from __future__ import annotations

from examples.partner.consumer import OrderBook


def change(event_id: str, status: str, at: str) -> dict[str, str]:
    return {"event_id": event_id, "order_id": "o1", "status": status, "occurred_at": at}


def test_a_change_that_arrives_late_does_not_wind_the_order_back() -> None:
    book = OrderBook()
    assert book.apply(change("e2", "delivered", "2026-11-30T10:00:01.500Z"))
    assert book.apply(change("e1", "paid", "2026-11-30T10:00:01.200Z"))  # a retried send overtaken
    assert book.status["o1"] == "delivered"
    assert [e["status"] for e in book.applied] == ["delivered", "paid"]  # both applied, once


def test_a_repeat_is_skipped_and_a_newer_change_moves_the_order_on() -> None:
    book = OrderBook()
    assert book.apply(change("e1", "paid", "2026-11-30T10:00:01.200Z"))
    assert not book.apply(change("e1", "paid", "2026-11-30T10:00:01.200Z"))
    assert book.apply(change("e2", "delivered", "2026-11-30T10:00:01.500Z"))
    assert book.status["o1"] == "delivered" and book.duplicates == 1
