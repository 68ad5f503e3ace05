"""Claiming due work (emails, webhook deliveries) so two replicas never send the same item."""

from __future__ import annotations

from typing import Any

from shared.contracts.envelope import new_id


async def claim_due(
    coll: Any, query: dict[str, Any], *, sort: list[tuple[str, int]], lease: dict[str, Any], limit: int
) -> list[dict[str, Any]]:
    """Claim up to `limit` documents matching `query` for this worker, in three round trips:
    read candidate ids, stamp them with a fresh claim token and `lease` (fields that make them
    stop matching `query`) in one update, read back what carries our token. A document another
    replica claimed in between simply is not ours."""
    ids = [d["_id"] for d in await coll.find(query, {"_id": 1}).sort(sort).limit(limit).to_list(None)]
    if not ids:
        return []
    token = new_id()
    await coll.update_many({**query, "_id": {"$in": ids}}, {"$set": {**lease, "claim": token}})
    return await coll.find({"claim": token}).to_list(None)  # type: ignore[no-any-return]
