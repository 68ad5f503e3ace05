"""Re-publishing what a new broker never received (the relay's broker-loss recovery).

The embedded broker of `make dev` and the tests keeps its topics in memory: when it restarts, the
events already marked sent in the outboxes are gone from the bus while their effects are kept in
MongoDB, so a saga in flight at the stop (an order paid, not yet delivered) would never finish.
Every broker start has its own cluster id (`deploy/stack.py` gives the memory broker a fresh one;
a real Kafka keeps its id as long as it keeps its data). Each service remembers, in its own
database, the cluster id its outbox was published to. A relay that takes the lease and finds
another id marks every record sent within the outbox retention (`OUTBOX_SENT_RETENTION_HOURS`)
pending again, oldest first as before, so the relay publishes them once more in their order.
Consumers' inboxes (never expired) make the repeats harmless: an event applied before the
restart is acknowledged and skipped; one that was lost is applied now.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from shared.config import ServiceSettings
from shared.contracts.envelope import utcnow
from shared.messaging.outbox import OUTBOX
from shared.mongo import Mongo

log = logging.getLogger(__name__)

RELAY_STATE = "relay_state"
BROKER_DOC = "broker"


async def broker_cluster_id(bootstrap: str) -> str | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        cluster: dict[str, Any] = await admin.describe_cluster()
    finally:
        await admin.close()
    cluster_id = cluster.get("cluster_id")
    return str(cluster_id) if cluster_id else None


async def republish_for_new_broker(mongo: Mongo, settings: ServiceSettings) -> int:
    """When the broker is not the one this outbox was published to, mark the records sent within
    the retention window pending again; how many. Nothing on the first run of a database (no
    broker recorded yet) or when the broker does not tell its cluster id."""
    cluster_id = await broker_cluster_id(settings.kafka_bootstrap_servers)
    if cluster_id is None:
        return 0
    state = mongo.db[RELAY_STATE]
    known = await state.find_one({"_id": BROKER_DOC})
    if known is not None and known.get("cluster_id") == cluster_id:
        return 0
    count = 0
    if known is not None:
        since = utcnow() - timedelta(hours=settings.outbox_sent_retention_hours)
        # Pending again before the new id is recorded: a crash in between repeats this step,
        # never skips it.
        result = await mongo.db[OUTBOX].update_many(
            {"sent_at": {"$gte": since}}, {"$set": {"pending": True}, "$unset": {"sent_at": ""}}
        )
        count = int(result.modified_count)
        log.warning(
            "new broker (cluster %s, was %s): %d outbox record(s) sent since %s will be published again",
            cluster_id,
            known.get("cluster_id"),
            count,
            since.isoformat(timespec="seconds"),
        )
    await state.update_one({"_id": BROKER_DOC}, {"$set": {"cluster_id": cluster_id, "seen_at": utcnow()}}, upsert=True)
    return count
