"""The fulfilment service's HTTP API (served under the public paths, reached through the gateway):
one module per context, every controller listed once in `CONTROLLERS`."""

from __future__ import annotations

from typing import Any

from services.fulfilment.api.card_keys import CardKeysController
from services.fulfilment.api.imports import BatchController, ImportJobController
from services.fulfilment.api.manual import ManualTaskController
from services.fulfilment.api.suppliers import SupplierCallbackController
from services.fulfilment.api.vault import VaultController

CONTROLLERS: list[Any] = [
    VaultController,
    ImportJobController,
    BatchController,
    ManualTaskController,
    SupplierCallbackController,
    CardKeysController,
]
