"""Reading clicks: per link (the stats page, CSV), per bulk job (clicks, click-through rate), per contact."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from links.models import Click, ShortLink


@dataclass(frozen=True)
class LinkStats:
    clicks: int
    people: int  # distinct contacts among the attributed clicks
    attributed: int  # clicks on personal links
    by_device: dict[str, int]
    top_referrers: list[tuple[str, int]]


def click_count():
    """Each link's clicks as a correlated subquery: counted for the rows of the page only (an index
    scan of click_link_time), not by grouping every click there is."""
    counted = Click.objects.filter(link=OuterRef("pk")).order_by().values("link").annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(counted), 0)


def link_list():
    return (
        ShortLink.objects.select_related("created_by")
        .annotate(click_count=click_count())
        .order_by("-created_at", "-id")
    )


def link_stats(link: ShortLink) -> LinkStats:
    clicks = Click.objects.filter(link=link)
    totals = clicks.aggregate(
        clicks=Count("id"),
        people=Count("contact", distinct=True),
        attributed=Count("id", filter=Q(personal__isnull=False)),
    )
    by_device = dict(clicks.values_list("device").annotate(n=Count("id")).order_by("-n"))
    referrers = list(
        clicks.exclude(referrer_host="").values_list("referrer_host").annotate(n=Count("id")).order_by("-n")[:10]
    )
    return LinkStats(
        clicks=totals["clicks"],
        people=totals["people"],
        attributed=totals["attributed"],
        by_device=by_device,
        top_referrers=referrers,
    )


def link_clicks_per_day(link: ShortLink, *, days: int = 30, today: date | None = None) -> list[tuple[date, int]]:
    """Clicks per day for the last ``days`` days (today included), zero-filled, oldest first."""
    today = today or timezone.localdate()
    start = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(start, datetime.min.time()))
    counts = dict(
        Click.objects.filter(link=link, clicked_at__gte=since)
        .annotate(day=TruncDate("clicked_at", tzinfo=timezone.get_current_timezone()))
        .values_list("day")
        .annotate(n=Count("id"))
    )
    return [(start + timedelta(days=i), counts.get(start + timedelta(days=i), 0)) for i in range(days)]


def link_clicks_for_export(link: ShortLink) -> Iterator[tuple]:
    """Every click of the link, newest first: time, device, referrer host, contact id, bulk job id."""
    rows = (
        Click.objects.filter(link=link)
        .order_by("-clicked_at")
        .values_list("clicked_at", "device", "referrer_host", "contact_id", "bulk_job_id")
    )
    yield from rows.iterator(chunk_size=2000)


@dataclass(frozen=True)
class JobClicks:
    clicks: int
    clickers: int  # recipients who clicked at least once
    sent: int
    links: list[tuple[str, int]]  # (slug, clicks)

    @property
    def click_through_rate(self) -> float | None:
        """Recipients who clicked per recipient sent, in percent; None before anything is sent."""
        return round(100 * self.clickers / self.sent, 1) if self.sent else None


def bulk_job_clicks(job) -> JobClicks:
    clicks = Click.objects.filter(bulk_job_id=job.pk)
    totals = clicks.aggregate(clicks=Count("id"), clickers=Count("contact", distinct=True))
    links = list(clicks.values_list("link__slug").annotate(n=Count("id")).order_by("-n")[:20])
    return JobClicks(clicks=totals["clicks"], clickers=totals["clickers"], sent=job.sent_count, links=links)


def contact_clicks(contact, *, limit: int = 50):
    """What this contact clicked, newest first (the link, when, which bulk job)."""
    return Click.objects.filter(contact=contact).select_related("link").order_by("-clicked_at")[:limit]


def funnel_clicked_rows(job, funnel) -> list:
    """The job funnel's "clicked" step (registered by links.apps): recipients who followed a personal
    link, as a rate of those sent."""
    from bulk.funnel import FunnelRow

    clicks = bulk_job_clicks(job)
    return [FunnelRow("clicked", "Clicked a link", clicks.clickers, funnel.count("sent"), "of sent")]
