"""The support service's one typed `SupportDeps`, built once at start-up (`ServiceSpec(deps=build)`).

Controllers receive it as `deps: SupportDeps`, event handlers and background loops through
`deps_of(ctx)` / `deps_of(rt)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from services.support.feed_topics import FeedTopics
from services.support.mailer import SmtpMailer
from services.support.settings import SupportSettings
from services.support.store import SupportStore
from services.support.webhook_sender import WebhookSender
from shared.messaging.consumer import HandlerContext
from shared.messaging.outbox import UnitOfWork
from shared.runtime import Runtime


@dataclass
class SupportDeps:
    settings: SupportSettings
    store: SupportStore
    uow: UnitOfWork
    """Runs a use case's writes in one transaction with the events they emit."""
    mailer: SmtpMailer
    webhooks: WebhookSender
    feed_topics: FeedTopics
    """Creates partners' feed topics."""


def build(rt: Runtime) -> SupportDeps:
    settings = cast(SupportSettings, rt.settings)
    return SupportDeps(
        settings=settings,
        store=SupportStore(rt.mongo.db),
        uow=rt.uow,
        mailer=SmtpMailer(settings),
        webhooks=WebhookSender(settings),
        feed_topics=FeedTopics(settings),
    )


def deps_of(source: HandlerContext | Runtime) -> SupportDeps:
    return cast(SupportDeps, source.deps)
