"""Forms and API problems: a problem+json answer's `errors: [{field, message}]` become messages
next to the form's fields; anything else becomes the banner at the top of the form.

    form = Form(values=dict(posted))
    try:
        await visitor.api("POST", "wallet/topups", json=...)
    except ApiProblem as problem:
        form.fail(problem, rename={"amount_cents": "amount"})
        return page(visitor, "pages/topup.html", status=422, form=form)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.web.client import ApiProblem

# Statuses that mean "the request was fine but cannot be done now": shown, never a 5xx page.
_SHOWN = {400, 401, 402, 403, 404, 409, 410, 413, 415, 422, 423, 429}


def api_field(name: str) -> str:
    """`$.recipient.mobile` / `body.recipient.mobile` / `recipient.mobile` -> `recipient.mobile`."""
    name = name.strip()
    for prefix in ("$.", "body."):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    return name


@dataclass
class Form:
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    banner: str | None = None
    status: int = 200

    def value(self, name: str, default: Any = "") -> Any:
        return self.values.get(name, default)

    def error(self, name: str) -> str | None:
        return self.errors.get(name)

    @property
    def ok(self) -> bool:
        return not self.errors and self.banner is None

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)
        self.status = 422

    def fail(
        self, problem: ApiProblem, *, rename: Mapping[str, str] | None = None, known: set[str] | None = None
    ) -> None:
        """Put the problem on the form. Field errors go next to their field when the form has
        it (`known`, default: every field of `values` and `rename` targets); the rest, and the
        problem's detail, go to the banner."""
        if problem.status >= 500 and problem.status not in _SHOWN:
            raise problem
        rename = dict(rename or {})
        fields = set(known) if known is not None else set(self.values) | set(rename.values())
        leftover: list[str] = []
        for item in problem.errors:
            name = api_field(str(item.get("field", "")))
            target = rename.get(name, name)
            if target not in fields and "." in target:
                target = rename.get(target.rsplit(".", 1)[-1], target.rsplit(".", 1)[-1])
            if target in fields:
                self.errors.setdefault(target, str(item.get("message", "")))
            else:
                leftover.append(str(item.get("message", "")))
        if not problem.errors or leftover:
            self.banner = "; ".join([m for m in leftover if m] or [problem.detail or problem.title])
        self.status = problem.status if problem.status in _SHOWN else 422
