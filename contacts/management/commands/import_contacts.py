from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from import_export.results import RowResult
from tqdm import tqdm

from contacts.resources import ContactBatchResource, ImportFileError, check_headers, describe_bad_rows, read_csv


class Command(BaseCommand):
    help = (
        "Import contacts from a UTF-8 CSV file (columns contactId, name, phone, email, optInWhatsApp, "
        "optInSms, optInEmail), through the same code as the admin's import. Good rows are kept; every "
        "bad row is listed with its reason. Opt-ins given are recorded in the consent history with "
        "source import. Exits with status 1 if any row was rejected."
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
            csv_file = read_csv(path)
            check_headers(csv_file.dataset.headers)
        except ImportFileError as exc:
            raise CommandError(f"{exc} Nothing was imported.") from exc

        dataset = csv_file.dataset
        with tqdm(total=len(dataset), unit="row", desc="Importing contacts", disable=options["verbosity"] == 0) as bar:
            resource = ContactBatchResource(progress=lambda: bar.update(1), malformed_rows=csv_file.malformed_rows)
            result = resource.import_data(
                dataset, dry_run=dry_run, raise_errors=False, use_transactions=True, user=actor
            )

        for error in result.base_errors:
            self.stderr.write(f"error: {error.error}")
        bad = describe_bad_rows(result)
        for number, reason in bad:
            line = csv_file.lines.get(number)
            where = f"row {number} (line {line})" if line else f"row {number}"
            self.stdout.write(f"{where}: {reason}")

        totals = result.totals
        verb = "would be" if dry_run else "were"
        summary = (
            f"{len(dataset)} row(s) read: {totals[RowResult.IMPORT_TYPE_NEW]} contact(s) {verb} created, "
            f"{totals[RowResult.IMPORT_TYPE_UPDATE]} updated, {len(bad)} rejected."
        )
        if result.has_errors():
            # import_data rolled everything back: an unexpected error means we cannot vouch for any row.
            raise CommandError(f"{summary} Unexpected errors (above): nothing was imported.")
        self.stdout.write(summary)
        if bad:
            raise CommandError(
                f"{len(bad)} row(s) rejected (listed above); the other rows {verb} imported. "
                "Fix the rejected rows and import them again."
            )
        self.stdout.write(self.style.SUCCESS("Dry run: nothing was changed." if dry_run else "Import complete."))
