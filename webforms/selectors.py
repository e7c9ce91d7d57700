"""Reading forms and their submissions (pages, API, CSV)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from django.db.models import Count, QuerySet

from contacts.models import Channel
from webforms.models import Form, FormSubmission
from wecare.spreadsheet import safe_row

CSV_HEADER = [
    "submitted_at",
    "form_version",
    "contact_id",
    "contact_created",
    "name",
    "phone",
    "email",
    "attributes",
    *[f"consent_{channel}" for channel in Channel.values],
    "source_ip",
    "user_agent",
]


def form_list() -> QuerySet[Form]:
    return Form.objects.select_related("current_version").annotate(submission_count=Count("submissions"))


def form_submissions(*, form: Form) -> QuerySet[FormSubmission]:
    return FormSubmission.objects.filter(form=form).select_related("version", "contact").order_by("-created_at")


def _attributes_text(attributes: dict) -> str:
    return "; ".join(f"{key}={value}" for key, value in sorted((attributes or {}).items()))


def submission_row(submission: FormSubmission) -> list:
    data = submission.data or {}
    consents = submission.consents or {}
    return [
        submission.created_at.isoformat(),
        submission.version.number,
        str(submission.contact_id),
        "yes" if submission.contact_created else "no",
        data.get("name", ""),
        data.get("phone", ""),
        data.get("email", ""),
        _attributes_text(data.get("attributes", {})),
        *[consents.get(channel, {}).get("outcome", "") for channel in Channel.values],
        submission.source_ip or "",
        submission.user_agent,
    ]


def submissions_csv(*, form: Form, chunk: int = 500) -> Iterator[str]:
    """The form's submissions as CSV text, header first; every cell formula-safe (wecare.spreadsheet)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    for number, submission in enumerate(form_submissions(form=form).iterator(chunk_size=chunk), start=1):
        writer.writerow(safe_row(submission_row(submission)))
        if number % chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
