"""The delivery funnel of a bulk job: sent → delivered → read → replied, and failed by reason.

Every figure is read from the rows the status events keep current: a recipient is *sent* when the
provider accepted its message (BulkRecipient SENT), *delivered* / *read* when its Message has
``delivered_at`` / ``read_at`` (status events), *replied* when the contact wrote to us on the job's
channel within REPLY_WINDOW (72 h) of the send, and *failed* when the send failed or the provider
later reported the message failed (its error code is then the reason).

Other features add rows (e.g. link clicks) without touching this module's callers: register a
function with ``funnel_rows_register``; it gets the job and the computed funnel and returns
FunnelRow objects, shown after the built-in rows (``job_funnel(job, extra_rows=...)`` takes extra
providers for one call).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Case, CharField, Count, Exists, F, Min, OuterRef, Q, QuerySet, Subquery, Value, When

from bulk.models import BulkJob, BulkRecipient, RecipientStatus
from bulk.reports import _csv_cell as csv_cell  # formula-safe, E.164 numbers kept usable
from messaging.models import Direction, Message, MessageStatus

REPLY_WINDOW = timedelta(hours=72)

SENT, DELIVERED, READ, REPLIED = "sent", "delivered", "read", "replied"
FAILED, SKIPPED, PENDING, CANCELLED = "failed", "skipped", "pending", "cancelled"
# A recipient's furthest state (the recipient table's filter), in funnel order.
STATES = (PENDING, SENT, DELIVERED, READ, REPLIED, FAILED, SKIPPED, CANCELLED)
STATE_LABELS = {
    PENDING: "Pending",
    SENT: "Sent",
    DELIVERED: "Delivered",
    READ: "Read",
    REPLIED: "Replied",
    FAILED: "Failed",
    SKIPPED: "Skipped",
    CANCELLED: "Cancelled",
}
CSV_FIELDS = ["recipientId", "contactId", "name", "address", "state", "reason", "sentAt", "deliveredAt", "readAt",
              "repliedAt"]  # fmt: skip


@dataclass
class FunnelRow:
    key: str
    label: str
    count: int
    base: int  # the count the rate is of (0: no rate)
    base_label: str = ""

    @property
    def rate(self) -> float | None:
        return round(100.0 * self.count / self.base, 1) if self.base else None


@dataclass
class Funnel:
    job: BulkJob
    rows: list[FunnelRow] = field(default_factory=list)
    by_state: dict[str, int] = field(default_factory=dict)
    failed_by_reason: list[tuple[str, int]] = field(default_factory=list)
    skipped_by_reason: list[tuple[str, int]] = field(default_factory=list)

    def count(self, key: str) -> int:
        return next((row.count for row in self.rows if row.key == key), 0)


RowProvider = Callable[[BulkJob, Funnel], Iterable[FunnelRow]]
_ROW_PROVIDERS: list[RowProvider] = []


def funnel_rows_register(provider: RowProvider) -> RowProvider:
    """Add rows to every job's funnel (usable as a decorator); registering twice adds once."""
    if provider not in _ROW_PROVIDERS:
        _ROW_PROVIDERS.append(provider)
    return provider


def _inbound_replies(job: BulkJob) -> QuerySet:
    """Inbound messages of the recipient's contact on the job's channel within the window after the send."""
    return Message.objects.filter(
        contact_id=OuterRef("contact_id"),
        direction=Direction.INBOUND,
        channel=job.channel,
        created_at__gte=OuterRef("sent_at"),
        created_at__lt=OuterRef("sent_at") + REPLY_WINDOW,
    )


# Sent, then reported failed by the provider (e.g. WhatsApp 131047): a failure, with the message's code.
FAILED_LATER = Q(status=RecipientStatus.SENT, message__status=MessageStatus.FAILED)
WAS_DELIVERED = Q(message__delivered_at__isnull=False) | Q(message__read_at__isnull=False)


def recipients_annotated(job: BulkJob) -> QuerySet:
    """The job's recipients with ``replied`` (bool), ``state`` and ``reason`` computed in SQL."""
    failed_later, delivered = FAILED_LATER, WAS_DELIVERED
    return (
        BulkRecipient.objects.filter(job=job)
        .annotate(replied=Exists(_inbound_replies(job)))
        .annotate(
            state=Case(
                When(status=RecipientStatus.SKIPPED, then=Value(SKIPPED)),
                When(status=RecipientStatus.CANCELLED, then=Value(CANCELLED)),
                When(status__in=[RecipientStatus.PENDING, RecipientStatus.SENDING], then=Value(PENDING)),
                When(status=RecipientStatus.FAILED, then=Value(FAILED)),
                When(failed_later, then=Value(FAILED)),
                When(replied=True, then=Value(REPLIED)),
                When(message__read_at__isnull=False, then=Value(READ)),
                When(delivered, then=Value(DELIVERED)),
                default=Value(SENT),
                output_field=CharField(),
            ),
            reason=Case(
                When(failed_later, then=F("message__error_code")),
                default=F("error_code"),
                output_field=CharField(),
            ),
        )
    )


def job_funnel(job: BulkJob, *, extra_rows: Iterable[RowProvider] = ()) -> Funnel:
    """Counts and rates of the job's funnel, failures and skips by reason (a few aggregate queries)."""
    rows = recipients_annotated(job)
    sent_q = Q(status=RecipientStatus.SENT)
    # The conditions are repeated rather than naming the annotations: Django cannot filter an aggregate
    # on an annotation of the same query.
    agg = BulkRecipient.objects.filter(job=job).aggregate(
        sent=Count("pk", filter=sent_q),
        delivered=Count("pk", filter=sent_q & WAS_DELIVERED),
        read=Count("pk", filter=sent_q & Q(message__read_at__isnull=False)),
        replied=Count("pk", filter=sent_q & Q(Exists(_inbound_replies(job)))),
        failed=Count("pk", filter=Q(status=RecipientStatus.FAILED) | FAILED_LATER),
        failed_at_send=Count("pk", filter=Q(status=RecipientStatus.FAILED)),
    )
    attempted = agg["sent"] + agg["failed_at_send"]
    funnel = Funnel(job=job)
    funnel.rows = [
        FunnelRow(SENT, "Sent", agg["sent"], attempted, "of attempted"),
        FunnelRow(DELIVERED, "Delivered", agg["delivered"], agg["sent"], "of sent"),
        FunnelRow(READ, "Read", agg["read"], agg["sent"], "of sent"),
        FunnelRow(REPLIED, "Replied within 72 h", agg["replied"], agg["sent"], "of sent"),
        FunnelRow(FAILED, "Failed", agg["failed"], attempted, "of attempted"),
    ]
    funnel.by_state = dict.fromkeys(STATES, 0)
    for item in rows.values("state").annotate(n=Count("pk")).order_by():
        funnel.by_state[item["state"]] = item["n"]
    for state, target in ((FAILED, funnel.failed_by_reason), (SKIPPED, funnel.skipped_by_reason)):
        grouped = rows.filter(state=state).values("reason").annotate(n=Count("pk")).order_by("-n", "reason")
        target.extend((item["reason"] or "UNKNOWN", item["n"]) for item in grouped)
    for provider in [*_ROW_PROVIDERS, *extra_rows]:
        funnel.rows.extend(provider(job, funnel))
    return funnel


def recipients_filtered(job: BulkJob, *, state: str = "", reason: str = "") -> QuerySet:
    """The recipient table: annotated rows in sequence order, filtered by state and reason.
    ValueError for a state that does not exist."""
    if state and state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}")
    rows = recipients_annotated(job).select_related("contact", "message").order_by("sequence", "id")
    if state:
        rows = rows.filter(state=state)
    if reason:
        rows = rows.filter(reason=reason)
    return rows


def reasons_of(job: BulkJob) -> list[str]:
    """Every reason (failure or skip) among the job's recipients, for the table's filter."""
    reasons = recipients_annotated(job).exclude(reason="").values_list("reason", flat=True).distinct()
    return sorted(set(reasons))


def _replied_at(job: BulkJob) -> Subquery:
    return Subquery(
        _inbound_replies(job).order_by().values("contact_id").annotate(first=Min("created_at")).values("first")[:1]
    )


def with_replied_at(rows: QuerySet, job: BulkJob) -> QuerySet:
    return rows.annotate(replied_at=_replied_at(job))


# --- the chart -------------------------------------------------------------------------------------

CHART_WIDTH, CHART_HEIGHT, CHART_STEPS = 480, 140, 24
SERIES = ((SENT, "#000"), (DELIVERED, "#2b6cb0"), (READ, "#2f855a"), (REPLIED, "#c05621"))


def funnel_chart(job: BulkJob, *, now: datetime | None = None, steps: int = CHART_STEPS) -> dict | None:
    """Cumulative sent, delivered, read and replied over time, as SVG polylines (None before a send)."""
    values = with_replied_at(BulkRecipient.objects.filter(job=job, status=RecipientStatus.SENT), job).values_list(
        "sent_at", "message__delivered_at", "message__read_at", "replied_at"
    )
    times: dict[str, list[datetime]] = {key: [] for key, _ in SERIES}
    for row in values.iterator():
        for (key, _), when in zip(SERIES, row, strict=True):
            if when is not None:
                times[key].append(when)
    if not times[SENT]:
        return None
    start = min(times[SENT])
    end = max(max(v) for v in times.values() if v)
    span = max((end - start).total_seconds(), 1.0)
    peak = max(len(v) for v in times.values())
    series = []
    for key, colour in SERIES:
        moments = sorted(times[key])
        points, index = [], 0
        for step in range(steps + 1):
            until = start + timedelta(seconds=span * step / steps)
            while index < len(moments) and moments[index] <= until:
                index += 1
            x = round(CHART_WIDTH * step / steps, 1)
            y = round(CHART_HEIGHT - (CHART_HEIGHT - 22) * index / peak, 1)  # the legend sits above
            points.append(f"{x},{y}")
        series.append({"key": key, "label": STATE_LABELS[key], "colour": colour, "points": " ".join(points),
                       "total": len(moments), "legend_x": 4 + 110 * len(series)})  # fmt: skip
    return {"series": series, "start": start, "end": end, "width": CHART_WIDTH, "height": CHART_HEIGHT, "peak": peak}


# --- CSV -------------------------------------------------------------------------------------------


def _iso(value) -> str:
    return value.isoformat() if value else ""


def funnel_csv_lines(job: BulkJob, *, state: str = "", reason: str = "") -> Iterator[str]:
    """The recipient table as CSV lines (formula-safe cells), for a streaming response."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([csv_cell(value) for value in values])
        return buffer.getvalue()

    yield line(CSV_FIELDS)
    rows = with_replied_at(recipients_filtered(job, state=state, reason=reason), job)
    for row in rows.iterator(chunk_size=2000):
        contact, message = row.contact, row.message
        yield line(
            [
                str(row.pk),
                str(row.contact_id or ""),
                contact.name if contact else "",
                row.address or (contact.phone if contact else ""),
                row.state,
                row.reason,
                _iso(row.sent_at),
                _iso(message.delivered_at if message else None),
                _iso(message.read_at if message else None),
                _iso(row.replied_at),
            ]
        )
