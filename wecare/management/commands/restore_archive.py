from __future__ import annotations

import json
from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.services import audit_record
from wecare.archive import ArchiveError, archive_key, archive_read, archive_restore
from wecare.maintenance import RETAINED_TABLES


class Command(BaseCommand):
    help = (
        "Restore one archived day of a table (archive/<table>/<YYYY>/<MM>/<DD>.jsonl.gz in ARCHIVE_BUCKET) "
        "for an investigation, or print it with --print. The archive is verified (count and checksum) first. "
        "Restored rows are kept for --hold-days before the retention purge takes them again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "table", choices=[t.label for t in RETAINED_TABLES], help="The table, e.g. messaging.message."
        )
        parser.add_argument("day", help="The archived day, YYYY-MM-DD (the rows' creation day).")
        parser.add_argument("--print", action="store_true", dest="print_only", help="Print the rows as JSON lines.")
        parser.add_argument("--hold-days", type=int, default=7, help="Days restored rows are kept (default 7).")

    def handle(self, *args, table: str, day: str, print_only: bool, hold_days: int, **options):
        try:
            when = date.fromisoformat(day)
        except ValueError:
            raise CommandError(f"day={day!r} is not a date: use YYYY-MM-DD.") from None
        if hold_days < 1:
            raise CommandError("--hold-days must be at least 1.")
        try:
            if print_only:
                found = archive_read(archive_key(table, when))
                if found is None:
                    raise ArchiveError(f"no archive of {table} for {when}")
                for row in found[0]:
                    self.stdout.write(json.dumps(row, sort_keys=True, ensure_ascii=False))
                return
            restored, present = archive_restore(table, when, hold_until=timezone.now() + timedelta(days=hold_days))
        except ArchiveError as exc:
            raise CommandError(str(exc)) from exc
        audit_record(
            user=None,
            action="archive.restore",
            resource_type="archive",
            resource_id=archive_key(table, when),
            details={"restored": restored, "alreadyPresent": present, "holdDays": hold_days},
        )
        self.stdout.write(f"Restored {restored} row(s) of {table} for {when}; {present} were already there.")
