"""Rendering pages: the Jinja environment (autoescape on, filters for money and time) and
`page(visitor, template, **context)` that every controller returns."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar.response import Template

from services.web.visitor import Visitor
from shared.money import format_price

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
SHOWN_ZONE = ZoneInfo("Asia/Shanghai")


def page(
    visitor: Visitor, template: str, *, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> Template:
    return Template(
        template_name=template,
        context={"v": visitor, "t": visitor.t, **context},
        status_code=status,
        headers=headers,
    )


def _when(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=ZoneInfo("UTC"))
        return str(value.astimezone(SHOWN_ZONE).strftime(fmt))
    return str(value)


def _price(cents: Any) -> str:
    return format_price(int(cents or 0))


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["price"] = _price
    env.filters["when"] = _when
    return env
