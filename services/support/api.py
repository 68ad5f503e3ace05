"""The support service's HTTP API (served under the public paths, reached through the gateway)."""

from __future__ import annotations

from typing import Any

from services.support.content_api import AnnouncementsController, HelpController
from services.support.notifications_api import NotificationsController
from services.support.tickets_api import StaffTicketsController, TicketsController
from services.support.urges_api import UrgesController
from services.support.webhooks_api import PartnerWebhooksController, StaffWebhooksController

CONTROLLERS: list[Any] = [
    AnnouncementsController,
    HelpController,
    TicketsController,
    StaffTicketsController,
    UrgesController,
    NotificationsController,
    PartnerWebhooksController,
    StaffWebhooksController,
]
