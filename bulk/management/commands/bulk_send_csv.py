"""Create a bulk job from a CSV of phones/emails, show its pre-flight, confirm it, and follow it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from bulk import execution, services
from bulk.errors import BulkError
from bulk.models import BulkJob, BulkJobChunk, ChunkStatus, JobStatus


class Command(BaseCommand):
    help = (
        "Create a bulk job from a CSV file (a header row names the phone and/or email columns), print its "
        "pre-flight, confirm it (--confirm-count must equal the pre-flight's will-send count when more than "
        "BULK_CONFIRMATION_THRESHOLD recipients would be sent to) and show its progress until it finishes. "
        "Chunks go to bulk-queue for the bulk workers; --inline processes them in this process instead."
    )

    def add_arguments(self, parser):
        parser.add_argument("csv", type=Path, help="CSV file of phone numbers and/or email addresses")
        parser.add_argument("--user", required=True, help="email of the Operator or Admin the job is sent as")
        parser.add_argument("--channel", required=True, choices=["whatsapp", "sms", "email"])
        parser.add_argument("--text", default="", help="message text (WhatsApp free-form, SMS, email text body)")
        parser.add_argument("--template", default="", help="WhatsApp template name")
        parser.add_argument("--language", default="", help="WhatsApp template language, e.g. en_US")
        parser.add_argument("--parameters", default="", help='template parameters as JSON, e.g. ["Asha", "42"]')
        parser.add_argument("--subject", default="", help="email subject")
        parser.add_argument("--html", default="", help="email HTML body")
        parser.add_argument("--phone-number-id", default="", help="WhatsApp origination number (default: all allowed)")
        parser.add_argument("--confirm-count", type=int, default=None, help="confirm with this will-send count")
        parser.add_argument("--inline", action="store_true", help="process the chunks here, not on bulk-queue")
        parser.add_argument("--no-wait", action="store_true", help="return once queued; do not follow progress")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(email__iexact=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']}.")
        if not user.has_perms(["bulk.add_bulkjob", "messaging.send_message"]):
            raise CommandError(f"{user.email} may not send bulk messages (Operator or Admin needed).")
        path: Path = options["csv"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        parameters = None
        if options["parameters"]:
            try:
                parameters = json.loads(options["parameters"])
            except ValueError as exc:
                raise CommandError(f"--parameters is not JSON: {exc}") from None
        message = services.BulkMessage(
            content=options["text"],
            template_name=options["template"],
            template_language=options["language"],
            template_parameters=parameters,
            subject=options["subject"],
            html=options["html"],
            origination_phone_number_id=options["phone_number_id"],
        )
        try:
            job = services.bulk_job_create(
                user=user, channel=options["channel"], message=message, csv_data=path.read_bytes(), csv_name=path.name
            )
        except BulkError as exc:
            self._print_preflight(getattr(exc, "job", None))
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self._print_preflight(job)

        if job.status == JobStatus.AWAITING_CONFIRMATION:
            count = options["confirm_count"]
            if count is None:
                self.stdout.write(
                    f"Not queued. To send, run again with --confirm-count {job.preflight['willSend']} "
                    f"or POST /api/bulk/jobs/{job.pk}/confirm."
                )
                return
            try:
                job = services.bulk_job_confirm(job_id=job.pk, user=user, count=count)
            except BulkError as exc:
                raise CommandError(f"{exc.code}: {exc.message} (job {job.pk} awaits confirmation)") from None
        self.stdout.write(self.style.SUCCESS(f"Job {job.pk} confirmed: {job.preflight['willSend']} to send."))
        if options["inline"]:
            self._run_inline(job)
        if not options["no_wait"]:
            job = self._follow(job)
            self.stdout.write(
                f"Job {job.pk} {job.status}: sent {job.sent_count}, failed {job.failed_count} "
                f"({job.unknown_count} outcome unknown), skipped {job.skipped_count}, cancelled {job.cancelled_count}. "
                f"Report: s3://{settings.REPORT_BUCKET}/{job.report_s3_key or '(not written yet)'}"
            )

    def _print_preflight(self, job: BulkJob | None) -> None:
        if job is None:
            return
        pre = job.preflight
        self.stdout.write(f"Job {job.pk} ({job.channel}) {job.status}")
        self.stdout.write(
            f"  recipients {pre.get('totalRecipients')}: will send {pre.get('willSend')}, "
            f"will not send {pre.get('willNotSend')}, duplicates removed {pre.get('duplicatesRemoved')}"
        )
        for code, count in pre.get("byReason", {}).items():
            self.stdout.write(f"    {code}: {count}")
        tier = pre.get("tier")
        if tier:
            self.stdout.write(
                f"  WhatsApp conversations to open {tier['conversationsToOpen']}, {tier['remaining']} left in the tier"
            )
        if job.status_reason:
            self.stdout.write(f"  {job.status_reason}")

    def _run_inline(self, job: BulkJob) -> None:
        chunks = BulkJobChunk.objects.filter(job=job).exclude(status=ChunkStatus.DONE).order_by("sequence")
        for chunk_id in tqdm(list(chunks.values_list("pk", flat=True)), desc="chunks", unit="chunk"):
            execution.chunk_process(chunk_id)

    def _follow(self, job: BulkJob) -> BulkJob:
        total = job.total_recipients
        with tqdm(total=total, desc=f"job {str(job.pk)[:8]}", unit="msg") as bar:
            while True:
                counts = execution.job_counts(job.pk)
                done = counts["total"] - counts["pending"]
                bar.update(done - bar.n)
                bar.set_postfix(sent=counts["sent"], failed=counts["failed"], skipped=counts["skipped"])
                job.refresh_from_db()
                if job.is_finished and job.report_s3_key or job.status == JobStatus.PAUSED:
                    return job
                time.sleep(0.5)
