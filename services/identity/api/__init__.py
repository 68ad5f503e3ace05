"""The identity service's HTTP API (served under the public paths, reached through the gateway),
one module per context. Thin controllers: parse, call one use case, shape the answer."""

from __future__ import annotations

from typing import Any

from services.identity.api.admin import AdminUsersController
from services.identity.api.agents import AdminAgentApplicationsController, AgentApplicationController
from services.identity.api.auth import AuthController
from services.identity.api.contacts import ContactsController
from services.identity.api.documents import AdminRealNameReviewsController, RealNameDocumentsController
from services.identity.api.keys import ApiKeysController, InternalApiKeysController
from services.identity.api.me import MeController
from services.identity.api.totp import TotpController

CONTROLLERS: list[Any] = [
    AuthController,
    MeController,
    TotpController,
    ContactsController,
    ApiKeysController,
    AdminUsersController,
    InternalApiKeysController,
    AgentApplicationController,
    AdminAgentApplicationsController,
    RealNameDocumentsController,
    AdminRealNameReviewsController,
]
