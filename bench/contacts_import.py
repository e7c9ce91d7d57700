"""Contacts CSV import speed through the real service (contacts.importing, which the command, the
page's and the admin's import jobs all run).

    scripts/with-services.sh .venv/bin/python bench/contacts_import.py [--rows 100000] [--sqlite] [--keep]

Writes a CSV of N rows (default 100,000): mixed name/phone (national form)/email, opt-ins on some
rows (each one a consent event with source import), and 2 % bad rows (no phone or email, invalid
phone, in-file duplicate, bad boolean) that must all be reported. Then:
1. imports it into an empty database (all creates);
2. exports the contacts (contacts.exporting), renames every one and flips some opt-ins, and
   imports that file (all updates: the export, edited, is what people re-import).
Peak memory is the process's maximum resident set size (it includes Python, Django and the file).
CPU per row is this process's CPU time (every thread) per row, split into parsing and validating the
cells (timed on a separate pass with no database) and the rest: matching, building and writing
rows. The database server's own CPU is not in it.
``--sqlite`` runs on a fresh SQLite file, the default of `make run` (target 5,000 rows/s).
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contacts_common import drop_database, use_fresh_database  # noqa: E402

DB_NAME = "wecare_bench_contacts_import"
TARGET_ROWS_PER_SECOND = 10_000.0
TARGET_SQLITE_ROWS_PER_SECOND = 5_000.0
TARGET_PEAK_MB = 300.0


def write_csv(path: Path, rows: int) -> dict[str, int]:
    bad = {"no phone or email": 0, "invalid phone": 0, "duplicate": 0, "bad boolean": 0}
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "phone", "email", "optInWhatsApp", "optInSms", "optInEmail"])
        for i in range(1, rows + 1):
            phone = f"98{i:08d}"  # national form, normalised to +9198xxxxxxxx
            email = f"person{i}@example.com" if i % 2 else ""
            row = [f"Pérson {i}", f"{phone[:5]} {phone[5:]}", email, "true" if i % 3 == 0 else "", "", ""]
            if i % 5 == 0:
                row[4] = "false"
            if i % 200 == 17:
                row[1], row[2] = "", ""
                bad["no phone or email"] += 1
            elif i % 200 == 42:
                row[1] = "12345"
                bad["invalid phone"] += 1
            elif i % 200 == 66:
                row[1] = f"+91 98{i - 1:08d}"  # the previous row's phone
                bad["duplicate"] += 1
            elif i % 200 == 88:
                row[5] = "yes"
                bad["bad boolean"] += 1
            writer.writerow(row)
    return bad


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parse_cpu_seconds(path: Path) -> float:
    """CPU time to read and validate every row of the file, without touching the database."""
    from django.conf import settings

    from contacts.importing import IMPORT_COLUMNS, _parse_row, open_csv

    started = time.process_time()
    rows = open_csv(path.read_bytes())
    index = {h: i for i, h in enumerate(rows.headers) if h in IMPORT_COLUMNS}
    for number, line, cells, _problem in rows:
        _parse_row(number, line, cells, index, settings.DEFAULT_PHONE_REGION, {})
    return time.process_time() - started


def import_file(path: Path):
    from contacts.importing import contacts_import, open_csv

    parse_cpu = parse_cpu_seconds(path)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = contacts_import(rows=open_csv(path.read_bytes()))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    rows = result.read
    print(
        f"  CPU per row in this process: {cpu / rows * 1e6:.0f} µs = parse {parse_cpu / rows * 1e6:.0f} µs "
        f"+ match/write {(cpu - parse_cpu) / rows * 1e6:.0f} µs (database server not counted)"
    )
    return result, elapsed


def run(rows: int, target: float) -> tuple[bool, str]:
    from contacts.exporting import contacts_export_rows
    from contacts.models import ConsentEvent, Contact

    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 CPUs shared)")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contacts.csv"
        bad = write_csv(path, rows)
        expected_bad = sum(bad.values())
        print(f"file: {rows:,} rows, {path.stat().st_size / 1e6:.1f} MB, {expected_bad:,} bad ({bad})")

        result, elapsed = import_file(path)
        imported = Contact.objects.count()
        events = ConsentEvent.objects.filter(source="import").count()
        assert result.rejected == expected_bad, (result.rejected, expected_bad)
        assert imported == result.created == rows - expected_bad, (imported, result.created)
        rate = rows / elapsed
        print(f"first import: {result.created:,} created, {events:,} consent events, {result.rejected:,} rejected")
        print(f"  e.g. row {result.bad_rows[0].number} (line {result.bad_rows[0].line}): {result.bad_rows[0].reason}")
        print(f"  {elapsed:.2f} s = {rate:,.0f} rows/s (target {target:,.0f}: ratio {rate / target:.2f})")
        ok &= rate >= target
        figures = f"create_rows_per_s={rate:.0f}"

        edited = Path(tmp) / "edited.csv"
        with edited.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            for n, cells in enumerate(contacts_export_rows(Contact.objects.active())):
                if n:
                    cells[1] = f"{cells[1]} (2)"
                    cells[5] = "true" if n % 4 == 0 else cells[5]
                writer.writerow(cells[:7])
        before = ConsentEvent.objects.count()
        result, elapsed = import_file(edited)
        assert result.updated == imported and result.rejected == 0, (result.updated, result.rejected)
        rate = imported / elapsed
        print(
            f"re-import: {result.updated:,} updated, {ConsentEvent.objects.count() - before:,} consent events; "
            f"{elapsed:.2f} s = {rate:,.0f} rows/s (target {target:,.0f}: ratio {rate / target:.2f})"
        )
        ok &= rate >= target
        figures += f" update_rows_per_s={rate:.0f}"
    peak = peak_mb()
    print(f"peak memory (max RSS): {peak:.0f} MB (target {TARGET_PEAK_MB:.0f} MB: ratio {peak / TARGET_PEAK_MB:.2f})")
    ok &= peak <= TARGET_PEAK_MB
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return ok, f"{figures} peak_mb={peak:.0f} target_rows_per_s={target:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--sqlite", action="store_true", help="on a fresh SQLite file (make run's default)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    args = parser.parse_args()

    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wecare.settings")
            os.environ.setdefault("LOG_LEVEL", "WARNING")
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            import django
            from django.core.management import call_command

            django.setup()
            call_command("migrate", verbosity=0)
            ok, figures = run(args.rows, TARGET_SQLITE_ROWS_PER_SECOND)
        print(f"RESULT contacts_import db=sqlite rows={args.rows} {figures} ok={ok}")
        return
    server = use_fresh_database(DB_NAME)
    try:
        ok, figures = run(args.rows, TARGET_ROWS_PER_SECOND)
    finally:
        if not args.keep:
            drop_database(server, DB_NAME)
    print(f"RESULT contacts_import db=postgresql rows={args.rows} {figures} ok={ok}")


if __name__ == "__main__":
    main()
