"""Every Kafka topic the platform uses. Each service publishes only to its own topic.

Messages are keyed by aggregate id (order id, user id, SKU id) so one aggregate's events keep
their order on one partition. A failed or malformed message goes to `<topic>.dlq`.
"""

from __future__ import annotations

import re

IDENTITY = "identity.events"
WALLET = "wallet.events"
CATALOG = "catalog.events"
ORDER = "order.events"
FULFILMENT = "fulfilment.events"
SUPPORT = "support.events"
PLATFORM = "platform.events"

ALL = (IDENTITY, WALLET, CATALOG, ORDER, FULFILMENT, SUPPORT, PLATFORM)

# Public, versioned topics that partner systems consume, one per partner account, so a Kafka ACL
# can give each partner its own orders and nothing else (docs/partner-events.md). Created by
# support when the partner's first API key is; not in ALL (no service consumes them, no DLQ).
PARTNER_TOPIC_TEMPLATE = "partner.{partner_user_id}.order-events.v1"
_PARTNER_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")


def partner_topic(partner_user_id: str) -> str:
    """The partner's own order-event topic. Raises ValueError for an id Kafka could not name
    (user ids are hex, so this never happens for a real account)."""
    if not _PARTNER_ID.fullmatch(partner_user_id):
        raise ValueError(f"not a partner id usable in a topic name: {partner_user_id!r}")
    return PARTNER_TOPIC_TEMPLATE.format(partner_user_id=partner_user_id)


def partner_group_prefix(partner_user_id: str) -> str:
    """The consumer-group prefix a partner's Kafka principal may use (its ACL is a prefix ACL)."""
    return f"partner.{partner_user_id}."


DLQ_SUFFIX = ".dlq"


def dlq(topic: str) -> str:
    return topic + DLQ_SUFFIX


def all_with_dlq() -> tuple[str, ...]:
    return ALL + tuple(dlq(t) for t in ALL)
