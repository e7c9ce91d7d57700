"""Contacts CSV export in constant memory, safe to open in a spreadsheet.

Rows are read with a chunked cursor (a server-side cursor on PostgreSQL), turned into cells and
CSV text a chunk at a time, so a million contacts cost the same memory as a thousand. Free text
(name, email) passes through wecare.spreadsheet.safe_cell: names come from WhatsApp profiles.
The columns are the import's, so an export edited in a spreadsheet imports back as updates.
The page's download, the ``export_contacts`` command and the admin all use these functions.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from contacts.models import Contact
from contacts.resources import EXPORT_ONLY_COLUMNS, IMPORT_COLUMNS
from wecare.spreadsheet import safe_cell

EXPORT_COLUMNS = (*IMPORT_COLUMNS, *EXPORT_ONLY_COLUMNS)
CHUNK_ROWS = 5000
_FIELDS = (
    "id",
    "name",
    "phone",
    "email",
    "opt_in_whatsapp",
    "opt_in_sms",
    "opt_in_email",
    "last_inbound_message_at",
    "created_at",
    "updated_at",
    "deleted_at",
)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def contacts_export_rows(queryset: QuerySet[Contact]) -> Iterator[list[str]]:
    """The header, then one formula-safe row of cells per contact, oldest first, streamed."""
    yield list(EXPORT_COLUMNS)
    rows = queryset.order_by("created_at", "id").values_list(*_FIELDS).iterator(chunk_size=CHUNK_ROWS)
    for values in rows:
        cells = [_text(value) for value in values]
        # Free text only: ids, validated E.164 phones, booleans and times are ours and hold no formula
        # (and an escaped "+91…" would no longer import back as a phone).
        cells[1] = safe_cell(cells[1])
        cells[3] = safe_cell(cells[3])
        yield cells


def contacts_export_csv(queryset: QuerySet[Contact], *, bom: bool = False) -> Iterator[str]:
    """CSV text in chunks of about CHUNK_ROWS rows (for StreamingHttpResponse or a file).

    ``bom`` starts the text with a byte order mark, so Excel reads the UTF-8 names right.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if bom:
        buffer.write("\ufeff")
    for count, cells in enumerate(contacts_export_rows(queryset), 1):
        writer.writerow(cells)
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()
