"""Contacts CSV export at a million contacts on PostgreSQL: speed and peak memory.

    scripts/with-services.sh .venv/bin/python bench/contacts_export.py [--rows 1000000] [--keep]

Loads N contacts (default 1,000,000) the way bench/contacts_search.py does, then streams the
export (contacts.exporting.contacts_export_csv: a server-side cursor, formula-safe cells, CSV text
in chunks; what the page's download and the export_contacts command send) into a file, and checks
the file has a header and one line per contact. Peak memory is the process's maximum resident set
size, measured before the export (Python + Django + the loaded modules) and after it.
Targets: >= 50,000 rows/s, peak memory <= 150 MB. Ends with a RESULT line.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from contacts_common import drop_database, use_fresh_database

DB_NAME = "wecare_bench_contacts_export"
TARGET_ROWS_PER_SECOND = 50_000.0
TARGET_PEAK_MB = 150.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(rows: int) -> tuple[bool, str]:
    from contacts_search import load

    from contacts.exporting import contacts_export_csv
    from contacts.models import Contact

    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 CPUs shared)")
    load(rows)
    active = Contact.objects.active().count()
    before = peak_mb()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contacts.csv"
        started = time.perf_counter()
        with path.open("w", encoding="utf-8", newline="") as handle:
            for chunk in contacts_export_csv(Contact.objects.active()):
                handle.write(chunk)
        elapsed = time.perf_counter() - started
        size = path.stat().st_size
        with path.open(encoding="utf-8", newline="") as handle:
            lines = sum(1 for _ in handle)
    peak = peak_mb()
    assert lines == active + 1, (lines, active)
    rate = active / elapsed
    print(f"exported {active:,} active contacts ({size / 1e6:.0f} MB of CSV) in {elapsed:.1f} s")
    ratio = rate / TARGET_ROWS_PER_SECOND
    print(f"throughput: {rate:,.0f} rows/s (target {TARGET_ROWS_PER_SECOND:,.0f}: ratio {ratio:.2f})")
    print(
        f"peak memory (max RSS): {peak:.0f} MB, {before:.0f} MB before the export "
        f"(target {TARGET_PEAK_MB:.0f} MB: ratio {peak / TARGET_PEAK_MB:.2f})"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ok = rate >= TARGET_ROWS_PER_SECOND and peak <= TARGET_PEAK_MB
    return ok, f"rows={active} rows_per_s={rate:.0f} peak_mb={peak:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    args = parser.parse_args()
    server = use_fresh_database(DB_NAME)
    try:
        ok, figures = run(args.rows)
    finally:
        if not args.keep:
            drop_database(server, DB_NAME)
    print(f"RESULT contacts_export {figures} ok={ok}")


if __name__ == "__main__":
    main()
