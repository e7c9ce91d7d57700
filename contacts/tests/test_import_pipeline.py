"""The import parses the next batch in a thread while the current one is written (PostgreSQL), so
the two overlap. These tests hold it to the same results as the plain loop (SQLite): exact counts
and progress, errors raised in the caller, nothing left running."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from contacts import importing
from contacts.importing import ImportFileError, contacts_import, open_csv
from contacts.models import ConsentEvent, Contact

pytestmark = pytest.mark.django_db

HEADER = "name,phone,email,optInWhatsApp,optInSms,optInEmail\n"
PARSE_THREAD = "contacts-import-parse"


def csv_bytes(rows: int, *, bad_every: int = 0, broken_row: int = 0) -> bytes:
    lines = [HEADER]
    for i in range(1, rows + 1):
        if bad_every and i % bad_every == 0:
            lines.append(f"Bad {i},,,,,\n")  # neither phone nor email: rejected while parsing
        elif i == broken_row:
            lines.append(f'"{"x" * 200_000}",,,,,\n')  # over the csv module's field limit
        else:
            lines.append(f"Person {i},98{i:08d},,true,,\n")
    return "".join(lines).encode()


def parse_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(PARSE_THREAD)]


@pytest.fixture
def parsing_threads(monkeypatch):
    """The names of the threads that parsed rows."""
    seen: set[str] = set()
    parse_row = importing._parse_row

    def recording(*args, **kwargs):
        seen.add(threading.current_thread().name)
        return parse_row(*args, **kwargs)

    monkeypatch.setattr(importing, "_parse_row", recording)
    return seen


def test_progress_after_each_batch_counts_exactly_what_is_written(parsing_threads):
    snapshots = []

    def on_progress(progress):
        # Taken in the caller's thread, inside its transaction: what is in the database right now.
        snapshots.append((progress.read, progress.created, progress.rejected, Contact.objects.count()))

    result = contacts_import(rows=open_csv(csv_bytes(55, bad_every=7)), batch_size=10, on_progress=on_progress)

    assert (result.read, result.created, result.rejected) == (55, 48, 7)
    assert [bad.number for bad in result.bad_rows] == [7, 14, 21, 28, 35, 42, 49]
    assert ConsentEvent.objects.count() == 48
    # The start, one call per batch of 10 good rows (the last one has 8), and the end.
    assert snapshots == [
        (0, 0, 0, 0),
        (11, 10, 1, 10),
        (23, 20, 3, 20),
        (34, 30, 4, 30),
        (46, 40, 6, 40),
        (55, 48, 7, 48),
        (55, 48, 7, 48),
    ]
    if connection.vendor == "postgresql":
        assert {name.rsplit("_", 1)[0] for name in parsing_threads} == {PARSE_THREAD}
    else:
        assert parsing_threads == {threading.current_thread().name}
    assert parse_threads() == []


def test_an_error_while_writing_surfaces_and_the_batches_written_before_stay(monkeypatch, parsing_threads):
    bulk_insert = importing._bulk_insert
    contact_batches = []

    def failing_third_batch(model, rows):
        if model is Contact:
            contact_batches.append(len(rows))
            if len(contact_batches) == 3:
                raise RuntimeError("the disk is full")
        bulk_insert(model, rows)

    monkeypatch.setattr(importing, "_bulk_insert", failing_third_batch)
    snapshots = []

    with pytest.raises(RuntimeError, match="the disk is full"):
        contacts_import(
            rows=open_csv(csv_bytes(60)),
            batch_size=10,
            on_progress=lambda p: snapshots.append((p.read, p.created)),
        )

    assert Contact.objects.count() == 20  # the third batch rolled back, nothing after it written
    assert snapshots[-1] == (20, 20)
    assert contact_batches == [10, 10, 10]
    assert parse_threads() == []  # the thread parsing ahead was waited for, not left behind


def test_an_error_while_parsing_ahead_is_raised_in_the_caller_with_earlier_batches_kept(monkeypatch):
    parse_row = importing._parse_row

    def failing_row_35(number, *args, **kwargs):
        if number == 35:
            raise ValueError("a bug in a validator")
        return parse_row(number, *args, **kwargs)

    monkeypatch.setattr(importing, "_parse_row", failing_row_35)

    with pytest.raises(ValueError, match="a bug in a validator"):
        contacts_import(rows=open_csv(csv_bytes(50)), batch_size=10)

    assert Contact.objects.count() == 30
    assert parse_threads() == []


def test_a_file_broken_midway_is_refused_before_any_row_is_written():
    with pytest.raises(ImportFileError, match="not valid CSV at line 36"):
        contacts_import(rows=open_csv(csv_bytes(50, broken_row=35)), batch_size=10)

    assert Contact.objects.count() == 0  # found while counting the rows, before the first batch
