"""What every console page shares: the staff guard with the section for the menu, page numbers,
money and number fields, flash messages after a redirect, and the console's words (imported
here so every console module registers them once)."""

from __future__ import annotations

import secrets
from typing import Any

from litestar.response import Redirect, Template

from services.web.forms import Form
from services.web.pages import console_words  # noqa: F401 - registers the console's words
from services.web.render import page
from services.web.visitor import Visitor
from shared.money import MoneyError, parse_yuan

# The console's menu: (section, path, word key). `admin_only` sections need the admin role in
# the API (a staff member sees them in the menu but the API refuses: the page says so).
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("dashboard", "/admin/", "console.nav.dashboard"),
    ("catalog", "/admin/catalog", "console.nav.catalog"),
    ("orders", "/admin/orders", "console.nav.orders"),
    ("queue", "/admin/queue", "console.nav.queue"),
    ("tickets", "/admin/tickets", "console.nav.tickets"),
    ("topups", "/admin/topups", "console.nav.topups"),
    ("coupons", "/admin/coupons", "console.nav.coupons"),
    ("users", "/admin/users", "console.nav.users"),
    ("real_name", "/admin/real-name", "console.nav.real_name"),
    ("content", "/admin/announcements", "console.nav.content"),
    ("partners", "/admin/webhooks", "console.nav.partners"),
    ("agents", "/admin/agents", "console.nav.agents"),
    ("withdrawals", "/admin/withdrawals", "console.nav.withdrawals"),
)
MAX_PAGE = 10_000


def console(visitor: Visitor, template: str, section: str, *, status: int = 200, **context: Any) -> Template:
    """A console page: `admin/<template>` with the menu's current section marked."""
    return page(visitor, f"admin/{template}", status=status, section=section, sections=SECTIONS, **context)


def page_no(raw: Any) -> int:
    try:
        return max(1, min(int(raw), MAX_PAGE))
    except (TypeError, ValueError):
        return 1


def idempotency() -> dict[str, str]:
    """A fresh Idempotency-Key for a creating POST (a resubmitted form is a new request)."""
    return {"Idempotency-Key": "console-" + secrets.token_urlsafe(16)}


def yuan_field(form: Form, name: str, message: str, *, required: bool = True) -> int | None:
    """A money field typed in yuan ("12.50") as cents; a bad value is put on the form."""
    raw = str(form.value(name, "")).strip()
    if not raw:
        if required:
            form.add(name, message)
        return None
    try:
        return parse_yuan(raw)
    except MoneyError:
        form.add(name, message)
        return None


def int_field(form: Form, name: str, message: str, *, required: bool = False, low: int = 0) -> int | None:
    raw = str(form.value(name, "")).strip()
    if not raw:
        if required:
            form.add(name, message)
        return None
    try:
        value = int(raw)
    except ValueError:
        form.add(name, message)
        return None
    if value < low:
        form.add(name, message)
        return None
    return value


async def done(visitor: Visitor, target: str, message: str) -> Redirect:
    """After a successful change: a one-time notice and back to a GET page (303)."""
    session = visitor.user()
    session.flash = message
    await visitor.deps.sessions.save(session)
    return Redirect(target, status_code=303)


def checked(data: dict[str, Any], name: str) -> bool:
    value = data.get(name)
    if isinstance(value, list):
        value = value[-1] if value else None
    return str(value or "").lower() in ("1", "on", "true", "yes")
