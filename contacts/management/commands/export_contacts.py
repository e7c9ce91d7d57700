from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from contacts.models import Contact
from contacts.resources import ContactResource


class Command(BaseCommand):
    help = (
        "Export contacts to a UTF-8 CSV file in the import format (contactId, name, phone, email, "
        "optInWhatsApp, optInSms, optInEmail, lastInboundMessageAt, createdAt, updatedAt, deletedAt). "
        "Deleted contacts are left out unless --include-deleted."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="Where to write the CSV file ('-' for standard output).")
        parser.add_argument("--include-deleted", action="store_true", help="Also export deleted contacts.")

    def handle(self, *args, path, include_deleted, **options):
        queryset = Contact.objects.all() if include_deleted else Contact.objects.active()
        dataset = ContactResource().export(queryset.order_by("created_at", "id"))
        text = dataset.csv
        if path == "-":
            self.stdout.write(text, ending="")
            return
        try:
            Path(path).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
        self.stderr.write(f"Exported {len(dataset)} contact(s) to {path}.")
