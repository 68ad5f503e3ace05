"""Every Kafka topic the platform uses. Each service publishes only to its own topic.

Messages are keyed by aggregate id (order id, user id, SKU id) so one aggregate's events keep
their order on one partition. A failed or malformed message goes to `<topic>.dlq`.
"""

from __future__ import annotations

IDENTITY = "identity.events"
WALLET = "wallet.events"
CATALOG = "catalog.events"
ORDER = "order.events"
FULFILMENT = "fulfilment.events"
SUPPORT = "support.events"
PLATFORM = "platform.events"
# Public, versioned topic that partner systems consume (see docs/events.md).
PARTNER_ORDER_EVENTS = "partner.order-events.v1"

ALL = (IDENTITY, WALLET, CATALOG, ORDER, FULFILMENT, SUPPORT, PLATFORM, PARTNER_ORDER_EVENTS)

DLQ_SUFFIX = ".dlq"


def dlq(topic: str) -> str:
    return topic + DLQ_SUFFIX


def all_with_dlq() -> tuple[str, ...]:
    return ALL + tuple(dlq(t) for t in ALL)
