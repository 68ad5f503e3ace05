"""The assistant's one typed `Deps`: settings, its store, the in-memory index and its cursor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from services.assistant import domain
from services.assistant.index import KnowledgeIndex
from services.assistant.settings import AssistantSettings
from services.assistant.store import AssistantStore
from shared.messaging.consumer import HandlerContext
from shared.runtime import Runtime


@dataclass
class AssistantDeps:
    settings: AssistantSettings
    store: AssistantStore
    index: KnowledgeIndex
    cursor: datetime | None = None
    """The store's `changed_at` up to which this process's index is current (None: not loaded)."""


def build(rt: Runtime) -> AssistantDeps:
    settings = cast(AssistantSettings, rt.settings)
    domain.warm()
    return AssistantDeps(
        settings=settings,
        store=AssistantStore(rt.mongo.db),
        index=KnowledgeIndex(),
    )


def deps_of(ctx: HandlerContext) -> AssistantDeps:
    return cast(AssistantDeps, ctx.deps)
