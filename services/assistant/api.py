"""The assistant's HTTP API: `POST /api/v1/assistant/ask` (anonymous callers too)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, post

from services.assistant import usecases
from services.assistant.deps import AssistantDeps
from services.assistant.domain import Answer
from shared.auth import Caller


class AskIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    question: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")] | None = None


class AssistantController(Controller):
    path = "/api/v1/assistant"
    tags = ["assistant"]

    @post(
        "/ask",
        status_code=200,
        summary="Ask the smart assistant (智能客服); signed-in callers' order questions use their own orders",
    )
    async def ask(self, deps: AssistantDeps, viewer: Caller | None, data: AskIn) -> Answer:
        return await usecases.ask(deps, question=data.question, order_id=data.order_id, caller=viewer)


CONTROLLERS: list[Any] = [AssistantController]
