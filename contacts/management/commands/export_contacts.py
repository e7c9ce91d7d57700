from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from contacts.exporting import contacts_export_csv
from contacts.models import Contact


class Command(BaseCommand):
    help = (
        "Export contacts to a UTF-8 CSV file in the import format (contactId, name, phone, email, "
        "optInWhatsApp, optInSms, optInEmail, optInVoice, optInRcs, lastInboundMessageAt, createdAt, updatedAt, "
        "deletedAt), "
        "streamed in constant memory, formula-safe. Deleted contacts are left out unless --include-deleted."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="Where to write the CSV file ('-' for standard output).")
        parser.add_argument("--include-deleted", action="store_true", help="Also export deleted contacts.")

    def handle(self, *args, path, include_deleted, **options):
        queryset = Contact.objects.all() if include_deleted else Contact.objects.active()
        rows = 0
        try:
            handle = self.stdout if path == "-" else open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
        try:
            for chunk in contacts_export_csv(queryset):
                if path == "-":
                    handle.write(chunk, ending="")
                else:
                    handle.write(chunk)
                rows += chunk.count("\n")
        except OSError as exc:
            raise CommandError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
        finally:
            if path != "-":
                handle.close()
        if path != "-":
            sys.stderr.flush()
            self.stderr.write(f"Exported contacts to {path}.")
