"""`python -m services.fulfilment.rebuild_stock [sku_id ...]`: recompute supply counters from the
vault (every SKU that ever had keys when none are named). For operators after Redis lost data;
the service also does it on start for missing counters and periodically."""

from __future__ import annotations

import asyncio
import sys

from services.fulfilment.settings import FulfilmentSettings
from services.fulfilment.store import FulfilmentStore
from services.fulfilment.usecases.stock import rebuild, rebuild_all
from shared import redis_client
from shared.inventory import Inventory
from shared.mongo import connect


async def _main(skus: list[str]) -> None:
    settings = FulfilmentSettings()
    mongo = connect(settings.mongodb_url, settings.database_name)
    redis = redis_client.connect(settings.redis_url)
    store, inventory = FulfilmentStore(mongo.db), Inventory(redis)
    try:
        if skus:
            result = {sku: await rebuild(store, inventory, sku) for sku in skus}
        else:
            result = await rebuild_all(store, inventory, only_missing=False)
        for sku, supply in sorted(result.items()):
            print(f"{sku}\t{supply}")
    finally:
        await redis.aclose()
        mongo.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))
