"""The wallet's business signal (Prometheus), recorded by the top-up use cases once their
transaction has committed:

- `kameng_topups_total{outcome, channel}`: top-ups `started`, `succeeded`, `failed` (declined,
  rejected by staff, expired unpaid) and `provider_error` (the provider refused to create one).

`channel` is one of the fixed payment channels; no user or top-up id is ever a label.
"""

from __future__ import annotations

from prometheus_client import Counter

from services.wallet.domain import BANK, PROVIDER_CHANNELS

TOPUPS = Counter("kameng_topups_total", "Top-ups by outcome and payment channel", ["outcome", "channel"])
OUTCOMES = ("started", "succeeded", "failed", "provider_error")

for _outcome in OUTCOMES:
    for _channel in (*PROVIDER_CHANNELS, BANK):
        TOPUPS.labels(_outcome, _channel)


def topup(outcome: str, channel: str) -> None:
    TOPUPS.labels(outcome, channel if channel in (*PROVIDER_CHANNELS, BANK) else "other").inc()


async def topup_after_commit(outcome: str, channel: str) -> None:
    topup(outcome, channel)
