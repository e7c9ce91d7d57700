"""Server-rendered SVG charts for the operations page: no script, no CDN, nothing the CSP must allow.

Each function returns markup built only from numbers and escaped labels. Charts scale with their
container (a viewBox, width 100 %), so the same SVG fits a 320 px phone and a wide screen. Colours
and fonts are presentation attributes (the CSP forbids inline style).
"""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

COLOURS = {"whatsapp": "#1a7f37", "sms": "#0b5cad", "email": "#8250df"}
DEFAULT_COLOUR = "#57606a"


def _svg(width: int, height: int, body: str, label: str) -> SafeString:
    return mark_safe(  # noqa: S308 - every value inside is a number or escaped
        f'<svg class="ops-chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">'
        f"<title>{escape(label)}</title>{body}</svg>"
    )


def line_chart(series: dict[str, list[int]], *, label: str, width: int = 720, height: int = 200) -> SafeString:
    """One polyline per series over the same x axis (e.g. 1440 minutes), with the peak marked."""
    left, right, top, bottom = 36, 8, 10, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    points = max((len(v) for v in series.values()), default=0)
    peak = max((max(v) for v in series.values() if v), default=0) or 1
    parts = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#d0d7de"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{peak}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
        f'<text x="{left}" y="{height - 6}">24 h ago</text>',
        f'<text x="{left + plot_w}" y="{height - 6}" text-anchor="end">now</text>',
    ]
    step = plot_w / max(1, points - 1)
    for name, values in series.items():
        if not values:
            continue
        coords = " ".join(
            f"{left + i * step:.1f},{top + plot_h - (v / peak) * plot_h:.1f}" for i, v in enumerate(values)
        )
        colour = COLOURS.get(name, DEFAULT_COLOUR)
        parts.append(
            f'<polyline class="series" data-series="{escape(name)}" fill="none" stroke="{colour}" '
            f'stroke-width="1.2" points="{coords}"/>'
        )
    legend_x = left + 8
    for name in series:
        colour = COLOURS.get(name, DEFAULT_COLOUR)
        parts.append(f'<rect x="{legend_x}" y="{top}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{legend_x + 14}" y="{top + 9}">{escape(name)} ({sum(series[name])})</text>')
        legend_x += 110
    return _svg(width, height, "".join(parts), label)


def bar_chart(
    rows: list[tuple[str, float]],
    *,
    label: str,
    unit: str = "",
    maximum: float | None = None,
    threshold: float | None = None,
    width: int = 720,
) -> SafeString:
    """Horizontal bars, one per row, with an optional vertical threshold line (e.g. the 80 % alert)."""
    bar_h, gap, label_w, value_w = 18, 8, 250, 60
    height = max(1, len(rows)) * (bar_h + gap) + gap + (14 if threshold is not None else 0)
    top = 14 if threshold is not None else 0
    plot_w = width - label_w - value_w
    peak = maximum if maximum is not None else max((v for _, v in rows), default=0) or 1
    parts = []
    for i, (name, value) in enumerate(rows):
        y = top + gap + i * (bar_h + gap)
        w = max(0.0, min(1.0, value / peak)) * plot_w
        colour = "#cf222e" if threshold is not None and value >= threshold else "#0b5cad"
        short = name if len(name) <= 38 else f"{name[:17]}…{name[-20:]}"
        parts.append(f'<text x="0" y="{y + 13}"><title>{escape(name)}</title>{escape(short)}</text>')
        parts.append(f'<rect class="bar" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}"/>')
        parts.append(f'<text x="{label_w + plot_w + 6}" y="{y + 13}">{value:g}{escape(unit)}</text>')
    if not rows:
        parts.append(f'<text x="0" y="{gap + 12}">Nothing in the last 24 hours.</text>')
    if threshold is not None:
        x = label_w + min(1.0, threshold / peak) * plot_w
        parts.append(
            f'<line class="threshold" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height}" '
            f'stroke="#cf222e" stroke-dasharray="4 3"/>'
        )
        parts.append(f'<text x="{x:.1f}" y="10" text-anchor="middle" fill="#cf222e">{threshold:g}{escape(unit)}</text>')
    return _svg(width, height, "".join(parts), label)
