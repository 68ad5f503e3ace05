"""The order service's copies of other services' facts: SKUs (catalog) to price and check
orders without asking the catalog, which buyers passed real-name verification (identity), and
coupon definitions and grants (wallet) to price coupons in quotes and orders."""

from __future__ import annotations

from datetime import datetime

from services.order.deps import OrderDeps
from shared.contracts.catalog import SkuChanged
from shared.contracts.wallet import CouponDefined, CouponGranted
from shared.messaging.outbox import Tx


async def project_sku(tx: Tx, deps: OrderDeps, sku: SkuChanged) -> bool:
    """Keep the newest revision; an older or repeated event changes nothing."""
    return await deps.store.upsert_sku(tx, sku)


async def buyer_verified(tx: Tx, deps: OrderDeps, user_id: str, person: str | None = None) -> None:
    """`person`: identity's fingerprint of the verified person, what trials are counted by."""
    await deps.store.mark_verified(tx, user_id, person=person)


async def coupon_defined(tx: Tx, deps: OrderDeps, coupon: CouponDefined) -> bool:
    return await deps.store.upsert_coupon(tx, coupon)


async def coupon_granted(tx: Tx, deps: OrderDeps, grant: CouponGranted) -> None:
    await deps.store.add_grant(tx, grant)


async def keys_revealed(tx: Tx, deps: OrderDeps, order_id: str, at: datetime) -> None:
    """The first reveal of an order's keys (fulfilment's): the order leaves 待使用."""
    await deps.store.mark_revealed(tx, order_id, at)
