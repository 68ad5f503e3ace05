"""Server-rendered SVG bar charts for the 消费分析报告: no chart library in the browser, readable
without JS, sized by the viewBox so they shrink to a phone's width. Labels are escaped."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

from shared.money import format_price

# Narrow on purpose: the chart is drawn for a phone's width and scales up on wider screens.
WIDTH = 360


def bar_chart(points: list[tuple[str, int]], *, title: str, horizontal: bool = False) -> Markup:
    """Bars of cents: vertical (months) or horizontal (categories, long labels)."""
    if not points:
        return Markup("")
    top = max(max(v for _, v in points), 1)
    parts: list[str] = []
    if horizontal:
        row, label_w, width = 34, 110, WIDTH
        bar_room = width - label_w - 70
        height = row * len(points) + 10
        for i, (label, value) in enumerate(points):
            y = 5 + i * row
            w = max(0, round(bar_room * max(value, 0) / top))
            short = label if len(label) <= 8 else label[:7] + "…"
            parts.append(
                f'<text x="{label_w - 8}" y="{y + 20}" text-anchor="end">'
                f"<title>{escape(label)}</title>{escape(short)}</text>"
                f'<rect class="bar" x="{label_w}" y="{y + 6}" width="{w}" height="20" rx="3"/>'
                f'<text x="{label_w + w + 6}" y="{y + 20}">{escape(format_price(value))}</text>'
            )
    else:
        width, height, base, left = WIDTH, 240, 200, 6
        slot = (width - left * 2) / len(points)
        bar_w = min(40.0, slot * 0.6)
        parts.append(f'<line class="axis" x1="{left}" y1="{base}" x2="{width - left}" y2="{base}"/>')
        for i, (label, value) in enumerate(points):
            h = round(160 * max(value, 0) / top)
            x = left + i * slot + (slot - bar_w) / 2
            cx = left + i * slot + slot / 2
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{base - h}" width="{bar_w:.1f}" height="{h}" rx="3"/>'
                f'<text x="{cx:.1f}" y="{base - h - 6}" text-anchor="middle">{escape(format_price(value))}</text>'
                f'<text x="{cx:.1f}" y="{base + 18}" text-anchor="middle">{escape(label)}</text>'
            )
    body = "".join(parts)
    return Markup(  # noqa: S704 - every value interpolated above is escaped
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{body}</svg>'
    )
