"""Server-rendered SVG charts for the operations page: no script, no CDN, nothing the CSP must allow.

Each function returns markup built only from numbers and escaped labels. Charts scale with their
container (a viewBox, width 100 %), so the same SVG fits a 320 px phone and a wide screen. Colours
and fonts are presentation attributes (the CSP forbids inline style).
"""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

COLOURS = {"whatsapp": "#1a7f37", "sms": "#0b5cad", "email": "#8250df", "voice": "#9a6700", "rcs": "#bf3989"}
DEFAULT_COLOUR = "#57606a"


FONT = 'font-family="Helvetica Neue, Helvetica, Arial, sans-serif" font-weight="300" font-size="12"'


def line_chart(series: dict[str, list[int]], *, label: str, height: int = 160) -> SafeString:
    """One polyline per series over the same x axis (e.g. 1440 minutes); axis and legend in HTML.

    The plot stretches to its container (viewBox, preserveAspectRatio none, strokes that do not
    scale), so it is as readable at 320 px as at 1280 px; text is HTML, never scaled.
    """
    points = max((len(v) for v in series.values()), default=0)
    peak = max((max(v) for v in series.values() if v), default=0) or 1
    width = max(1, points - 1)
    lines = []
    for name, values in series.items():
        if not values:
            continue
        coords = " ".join(f"{i},{height - (v / peak) * (height - 4):.1f}" for i, v in enumerate(values))
        colour = COLOURS.get(name, DEFAULT_COLOUR)
        lines.append(
            f'<polyline class="series" data-series="{escape(name)}" fill="none" stroke="{colour}" '
            f'stroke-width="1.5" vector-effect="non-scaling-stroke" points="{coords}"/>'
        )
    legend = "".join(
        f'<span class="ops-legend-item"><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" '
        f'fill="{COLOURS.get(name, DEFAULT_COLOUR)}"/></svg> {escape(name)} ({sum(values)})</span>'
        for name, values in series.items()
    )
    return mark_safe(  # noqa: S308 - every value inside is a number or escaped
        f'<svg class="ops-chart" viewBox="0 0 {width} {height}" preserveAspectRatio="none" width="100%" '
        f'height="{height}" role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>"
        f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#d0d7de" vector-effect="non-scaling-stroke"/>'
        f"{''.join(lines)}</svg>"
        f'<div class="ops-axis"><span>24 h ago</span><span>peak {peak}/min</span><span>now</span></div>'
        f'<div class="ops-legend">{legend}</div>'
    )


def bar_chart(
    rows: list[tuple[str, float]],
    *,
    label: str,
    unit: str = "",
    maximum: float | None = None,
    threshold: float | None = None,
) -> SafeString:
    """Horizontal bars, a label above each, with an optional threshold line (e.g. the 80 % alert).

    Widths are percentages of the container and text is never scaled: readable at any width.
    """
    row_h = 36
    top = 16 if threshold is not None else 0
    height = top + max(1, len(rows)) * row_h
    peak = maximum if maximum is not None else max((v for _, v in rows), default=0) or 1
    parts = []
    for i, (name, value) in enumerate(rows):
        y = top + i * row_h
        pct = max(0.0, min(1.0, value / peak)) * 100
        colour = "#cf222e" if threshold is not None and value >= threshold else "#0b5cad"
        # Long ids (phone-number-id-…) keep their distinctive end; the full name is in the tooltip.
        head, _, tail = name.rpartition("#")
        short = name if len(name) <= 30 else (f"{head}#…{tail[-8:]}" if head else f"…{name[-24:]}")
        parts.append(f'<text x="0" y="{y + 12}"><title>{escape(name)}</title>{escape(short)}</text>')
        parts.append(f'<text x="100%" y="{y + 12}" text-anchor="end">{value:g}{escape(unit)}</text>')
        parts.append(f'<rect x="0" y="{y + 17}" width="100%" height="12" fill="#eaeef2"/>')
        parts.append(f'<rect class="bar" x="0" y="{y + 17}" width="{pct:.1f}%" height="12" fill="{colour}"/>')
    if not rows:
        parts.append('<text x="0" y="14">Nothing in the last 24 hours.</text>')
    if threshold is not None:
        x = min(1.0, threshold / peak) * 100
        parts.append(
            f'<line class="threshold" x1="{x:.1f}%" y1="{top}" x2="{x:.1f}%" y2="{height}" '
            f'stroke="#cf222e" stroke-dasharray="4 3"/>'
        )
        parts.append(
            f'<text x="{x:.1f}%" y="11" text-anchor="middle" fill="#cf222e">{threshold:g}{escape(unit)}</text>'
        )
    return mark_safe(  # noqa: S308 - every value inside is a number or escaped
        f'<svg class="ops-chart" width="100%" height="{height}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg" {FONT}><title>{escape(label)}</title>{"".join(parts)}</svg>'
    )
