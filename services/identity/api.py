"""The identity service's HTTP API (served under the public paths, reached through the gateway)."""

from __future__ import annotations

from typing import Any

from services.identity.api_admin import AdminUsersController
from services.identity.api_auth import AuthController
from services.identity.api_contacts import ContactsController
from services.identity.api_keys import ApiKeysController, InternalApiKeysController
from services.identity.api_me import MeController
from services.identity.api_totp import TotpController

CONTROLLERS: list[Any] = [
    AuthController,
    MeController,
    TotpController,
    ContactsController,
    ApiKeysController,
    AdminUsersController,
    InternalApiKeysController,
]
