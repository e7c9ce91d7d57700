from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from contacts.importing import ImportFileError, ImportProgress, check_size, contacts_import, open_csv


class Command(BaseCommand):
    help = (
        "Import contacts from a CSV file (columns contactId, name, phone, email, optInWhatsApp, "
        "optInSms, optInEmail, optInVoice, optInRcs; UTF-8 or UTF-16, separated by commas, semicolons "
        "or tabs), through the "
        "same batched service as the page and the admin. Good rows are kept; every bad row is listed "
        "with its line and reason. Opt-ins given are recorded in the consent history with source "
        "import. Exits with status 1 if any row was rejected."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="CSV file; a row without contactId creates a contact, one with it updates.")
        parser.add_argument("--dry-run", action="store_true", help="Check every row, change nothing.")
        parser.add_argument("--as", dest="as_user", metavar="EMAIL", help="Record the changes as made by this user.")

    def handle(self, *args, path, dry_run, as_user, **options):
        actor = None
        if as_user:
            actor = get_user_model().objects.filter(email__iexact=as_user).first()
            if actor is None:
                raise CommandError(f"No user with email {as_user}.")
        try:
            file = Path(path)
            try:
                check_size(file.stat().st_size, name=str(path))
                data = file.read_bytes()
            except OSError as exc:
                raise ImportFileError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
            rows = open_csv(data, name=str(path))
        except ImportFileError as exc:
            raise CommandError(f"{exc} Nothing was imported.") from exc

        bar = tqdm(total=0, unit="row", desc="Importing contacts", disable=options["verbosity"] == 0)

        def on_progress(progress: ImportProgress) -> None:
            bar.total = progress.total
            bar.update(progress.read - bar.n)

        with bar:
            result = contacts_import(rows=rows, actor=actor, dry_run=dry_run, on_progress=on_progress)

        for bad in result.bad_rows:
            self.stdout.write(f"row {bad.number} (line {bad.line}): {bad.reason}")
        verb = "would be" if dry_run else "were"
        self.stdout.write(
            f"{result.read} row(s) read: {result.created} contact(s) {verb} created, "
            f"{result.updated} updated, {result.rejected} rejected."
            + (f" {result.unchanged} row(s) matched their contact already." if result.unchanged else "")
        )
        if result.bad_rows:
            raise CommandError(
                f"{result.rejected} row(s) rejected (listed above); the other rows {verb} imported. "
                "Fix the rejected rows and import them again."
            )
        self.stdout.write(self.style.SUCCESS("Dry run: nothing was changed." if dry_run else "Import complete."))
