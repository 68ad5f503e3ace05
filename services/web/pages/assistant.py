"""The smart assistant widget (智能客服): every storefront page carries the panel
(`partials/assistant.html`); its form posts here and gets back one exchange of the conversation.

Asked as the visitor (`visitor.public`): anonymous visitors get help-center answers, a signed-in
buyer's "my order" questions are answered from their own orders (the API decides both)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, post
from litestar.response import Template

from services.web.client import ApiProblem
from services.web.forms import Form
from services.web.pages.common import FormData, text
from services.web.render import page
from services.web.visitor import Visitor

# Below this the assistant is not sure: the answer also offers a person (an after-sales ticket).
HANDOVER_BELOW = 0.6

# Where each source kind is read on the storefront.
SOURCE_PAGES = {"article": "/help/{}", "announcement": "/announcements/{}", "product": "/product/{}"}


def source_links(sources: Any) -> list[dict[str, str]]:
    links = []
    for source in sources if isinstance(sources, list) else []:
        pattern = SOURCE_PAGES.get(str(source.get("kind")))
        if pattern and source.get("id"):
            links.append({"href": pattern.format(source["id"]), "title": str(source.get("title") or source["id"])})
    return links


class AssistantPages(Controller):
    path = "/assistant"

    @post("/ask")
    async def ask(self, visitor: Visitor, data: FormData) -> Template:
        question = text(data, "question", limit=500)
        order_id = text(data, "order_id", limit=64)
        form = Form(values={"question": question})
        body: dict[str, str] = {"question": question}
        if order_id:
            body["order_id"] = order_id
        template = "partials/assistant_answer.html" if visitor.htmx else "pages/assistant.html"
        try:
            answer = await visitor.public("POST", "assistant/ask", json=body)
        except ApiProblem as problem:
            form.fail(problem, known={"question"})
            if not form.errors and form.banner:
                # The widget has one field: every problem is shown next to it.
                form.errors["question"], form.banner = form.banner, None
            # htmx swaps 2xx answers only; the error travels in the fragment (out of band).
            status = 200 if visitor.htmx else form.status
            return page(visitor, template, status=status, form=form, answer=None, asked=question)
        return page(
            visitor,
            template,
            form=Form(),
            answer=answer,
            asked=question,
            links=source_links(answer.get("sources")),
            handover=answer.get("intent") == "handover" or float(answer.get("confidence") or 0) < HANDOVER_BELOW,
        )
