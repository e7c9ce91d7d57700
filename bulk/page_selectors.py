"""Reads for the bulk pages: the sends-over-time chart of a job, recipients waiting out quiet hours."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Min
from django.utils import timezone

from bulk.models import QUIET_HOURS, BulkJob, BulkRecipient, RecipientStatus

CHART_BARS = 24
CHART_WIDTH = 480
CHART_HEIGHT = 120


def sends_over_time(job: BulkJob, *, bars: int = CHART_BARS) -> dict | None:
    """Sends per time slice from the first to the last send (or now, while running), as SVG bars."""
    times = sorted(
        BulkRecipient.objects.filter(job=job, sent_at__isnull=False).values_list("sent_at", flat=True).iterator()
    )
    if not times:
        return None
    start = times[0]
    end = max(times[-1], job.completed_at or job.cancelled_at or (timezone.now() if not job.is_finished else times[-1]))
    span = max((end - start).total_seconds(), 1.0)
    step = span / bars
    counts = [0] * bars
    for when in times:
        counts[min(int((when - start).total_seconds() / step), bars - 1)] += 1
    peak = max(counts)
    width = CHART_WIDTH / bars
    shapes = []
    for index, count in enumerate(counts):
        height = 0 if peak == 0 else round(count / peak * (CHART_HEIGHT - 16), 1)
        shapes.append(
            {
                "x": round(index * width + 1, 1),
                "y": round(CHART_HEIGHT - height, 1),
                "width": round(width - 2, 1),
                "height": height,
                "count": count,
                "from": start + timedelta(seconds=index * step),
            }
        )
    return {
        "bars": shapes,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "peak": peak,
        "start": start,
        "end": end,
        "per_second": round(len(times) / span, 1),
        "total": len(times),
    }


def quiet_waiting(job: BulkJob) -> dict | None:
    """How many recipients wait for their quiet hours to end, and the first resume time (None: none)."""
    waiting = BulkRecipient.objects.filter(job=job, status=RecipientStatus.PENDING, error_code=QUIET_HOURS).aggregate(
        count=Count("pk"), first=Min("resume_at")
    )
    return waiting if waiting["count"] else None
