"""The assistant's background loop (supervised by `ServiceSpec.background`): a thin timer calling
one use case, like the handlers are for events."""

from __future__ import annotations

import asyncio
from typing import cast

from services.assistant import usecases
from services.assistant.deps import AssistantDeps
from shared.runtime import Runtime


async def follow_store(rt: Runtime) -> None:
    """The store's content changes -> this process's in-memory index. Every replica runs this:
    the content events are handled by one replica of the consumer group, but every replica
    answers questions, so each follows the store whoever wrote it."""
    deps = cast(AssistantDeps, rt.deps)
    while True:
        await usecases.refresh_index(deps)
        await asyncio.sleep(deps.settings.index_poll_seconds)
