"""The support service's HTTP API (served under the public paths, reached through the gateway):
thin controllers, one module per context."""

from __future__ import annotations

from typing import Any

from services.support.api.content import AnnouncementsController, HelpController
from services.support.api.feed import PartnerFeedController
from services.support.api.notifications import NotificationsController
from services.support.api.tickets import StaffTicketsController, TicketsController
from services.support.api.urges import UrgesController
from services.support.api.webhooks import PartnerWebhooksController, StaffWebhooksController

CONTROLLERS: list[Any] = [
    AnnouncementsController,
    HelpController,
    TicketsController,
    StaffTicketsController,
    UrgesController,
    NotificationsController,
    PartnerWebhooksController,
    StaffWebhooksController,
    PartnerFeedController,
]
