"""CSV import speed through the real path: `import_contacts` (the same resource as the admin).

    scripts/with-services.sh .venv/bin/python bench/contacts_import.py [--rows N] [--keep]

Writes a CSV of N rows (default 20,000): mixed name/phone/email, opt-ins on some rows (each one
a consent event with source import), and 1% bad rows (no phone or email, invalid phone, duplicate,
bad boolean) that must all be reported. Prints rows per second against the target.
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
import time
from pathlib import Path

from contacts_common import drop_database, use_fresh_database

DB_NAME = "wecare_bench_contacts_import"
# Target: a 100,000-row file within five minutes, i.e. at least 333 rows a second.
TARGET_ROWS_PER_SECOND = 333.0


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
            if i % 100 == 17:
                row[1], row[2] = "", ""
                bad["no phone or email"] += 1
            elif i % 100 == 42:
                row[1] = "12345"
                bad["invalid phone"] += 1
            elif i % 100 == 66:
                row[1] = f"+91 98{i - 1:08d}"  # the previous row's phone
                bad["duplicate"] += 1
            elif i % 100 == 88:
                row[5] = "yes"
                bad["bad boolean"] += 1
            writer.writerow(row)
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    args = parser.parse_args()

    server = use_fresh_database(DB_NAME)
    try:
        run(args.rows)
    finally:
        if not args.keep:
            drop_database(server, DB_NAME)


def run(rows: int) -> None:
    from django.core.management import CommandError, call_command

    from contacts.models import ConsentEvent, Contact

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contacts.csv"
        bad = write_csv(path, rows)
        expected_bad = sum(bad.values())
        out = io.StringIO()
        started = time.perf_counter()
        try:
            call_command("import_contacts", str(path), stdout=out, verbosity=0)
        except CommandError as exc:
            message = str(exc)
        else:
            message = ""
        elapsed = time.perf_counter() - started

    report = [line for line in out.getvalue().splitlines() if line.startswith("row ")]
    imported = Contact.objects.count()
    events = ConsentEvent.objects.filter(source="import").count()
    assert len(report) == expected_bad, (len(report), expected_bad, message)
    assert imported == rows - expected_bad, (imported, rows, expected_bad)
    rate = rows / elapsed
    print(f"rows in file:        {rows:,}")
    print(f"imported:            {imported:,} contacts, {events:,} consent events (source import)")
    print(f"reported bad rows:   {len(report):,} ({', '.join(f'{k}: {v}' for k, v in bad.items())})")
    print(f"first reports:       {report[0]}")
    print(f"                     {report[1]}")
    print(f"elapsed:             {elapsed:.1f} s")
    ratio = rate / TARGET_ROWS_PER_SECOND
    print(f"throughput:          {rate:,.0f} rows/s (target {TARGET_ROWS_PER_SECOND:,.0f} rows/s: ratio {ratio:.2f})")


if __name__ == "__main__":
    main()
