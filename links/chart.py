"""Clicks per day as server-rendered SVG columns (no script; fits 320 px and wide screens alike)."""

from __future__ import annotations

from datetime import date

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

HEIGHT = 120


def clicks_chart(days: list[tuple[date, int]], *, label: str) -> SafeString:
    peak = max((n for _, n in days), default=0) or 1
    width = max(1, len(days)) * 10
    bars = []
    for i, (day, count) in enumerate(days):
        h = 0 if not count else max(2.0, count / peak * (HEIGHT - 4))
        bars.append(
            f'<rect class="bar" data-day="{day.isoformat()}" data-count="{count}" x="{i * 10 + 1}" '
            f'y="{HEIGHT - h:.1f}" width="8" height="{h:.1f}" fill="#0b5cad"><title>{day:%d %b}: {count}</title></rect>'
        )
    first = days[0][0].strftime("%d %b") if days else ""
    last = days[-1][0].strftime("%d %b") if days else ""
    return mark_safe(  # noqa: S308 - numbers, dates and the escaped label only
        f'<svg class="ops-chart" viewBox="0 0 {width} {HEIGHT}" preserveAspectRatio="none" width="100%" '
        f'height="{HEIGHT}" role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>"
        f'<line x1="0" y1="{HEIGHT}" x2="{width}" y2="{HEIGHT}" stroke="#d0d7de" vector-effect="non-scaling-stroke"/>'
        f"{''.join(bars)}</svg>"
        f'<div class="ops-axis"><span>{first}</span><span>peak {peak if any(n for _, n in days) else 0}/day</span>'
        f"<span>{last}</span></div>"
    )
