"""The fulfilment service's own long-lived objects, registered on its Runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from services.fulfilment.settings import FulfilmentSettings
from services.fulfilment.suppliers import Supplier
from shared.contracts.order import OrderPaid
from shared.messaging.outbox import Tx


@dataclass
class FulfilmentDeps:
    settings: FulfilmentSettings
    supplier: Supplier
    seal: Callable[[str], dict[str, Any]]
    deliver_auto: Callable[[Tx, OrderPaid], Awaitable[None]]
    """Claims card keys for an auto-delivery order inside the handler's transaction."""
    """Encrypts delivered content (card keys, manual deliveries) the way the vault stores keys."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a direct top-up is waiting, so the dispatcher does not wait for its next round."""
