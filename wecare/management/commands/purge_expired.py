from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from django.core.management.base import BaseCommand, CommandError

from wecare import maintenance


class Command(BaseCommand):
    help = (
        "Delete what has passed its retention: audit entries (AUDIT_RETENTION_DAYS), messages after 30 days "
        "with their media files and S3 objects, and dead-letter records after 7 days. Celery beat runs the "
        "same purge daily (task wecare.purge_expired); this command runs it now."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=maintenance.DEFAULT_BATCH_SIZE,
            help=f"Rows deleted per transaction (default {maintenance.DEFAULT_BATCH_SIZE}).",
        )

    def handle(self, *args, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            result = maintenance.purge_expired(batch_size=batch_size)
        except (BotoCoreError, ClientError) as exc:
            raise CommandError(
                f"Purging expired messages stopped: S3 could not delete their media ({exc}). Expired audit "
                "entries and dead-letter records were purged; run the command again when S3 answers."
            ) from exc
        self.stdout.write(
            f"Purged {result.audit_entries} audit entries, {result.messages} messages "
            f"({result.media_files} media files, {result.media_objects} S3 objects) "
            f"and {result.dlq_messages} dead-letter records."
        )
        if result.messages_kept:
            self.stderr.write(
                self.style.WARNING(
                    f"{result.messages_kept} expired messages were kept because S3 refused to delete their media; "
                    "the next run retries them."
                )
            )
