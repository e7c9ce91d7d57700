"""Bulk jobs: one message to many contacts, pre-flighted, confirmed, sent in chunks, reported.

A job's recipients are rows (`BulkRecipient`), so every counter is an aggregate over them and every
recipient's fate is visible: PENDING until a worker claims it (SENDING, a conditional update that
exactly one worker wins), then SENT, FAILED, SKIPPED (the safety gate refused) or CANCELLED.
Chunks (`BulkJobChunk`) are the unit of work on bulk-queue: 100 consecutive sendable recipients.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from contacts.models import Channel, Contact
from messaging.models import Message

# Recipients per chunk: the unit of work on bulk-queue (the last chunk of a job may be smaller).
CHUNK_SIZE = 100

# Error codes the bulk layer adds to the safety gate's own (OPT_IN_REQUIRED, TIER_LIMIT, ...).
OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
ADDRESS_INVALID = "ADDRESS_INVALID"
CHUNK_DEAD_LETTERED = "CHUNK_DEAD_LETTERED"
PROVIDER_ERROR = "PROVIDER_ERROR"


class JobStatus(models.TextChoices):
    AWAITING_CONFIRMATION = "AWAITING_CONFIRMATION", "Awaiting confirmation"
    PENDING = "PENDING", "Pending"
    IN_PROGRESS = "IN_PROGRESS", "In progress"
    PAUSED = "PAUSED", "Paused"
    COMPLETED = "COMPLETED", "Completed"
    CANCELLED = "CANCELLED", "Cancelled"
    FAILED = "FAILED", "Failed"
    REJECTED = "REJECTED", "Rejected"


# Jobs whose sends may still start (workers check this before every recipient).
RUNNABLE_JOB_STATUSES = (JobStatus.PENDING, JobStatus.IN_PROGRESS)
FINISHED_JOB_STATUSES = (JobStatus.COMPLETED, JobStatus.CANCELLED, JobStatus.FAILED, JobStatus.REJECTED)


class RecipientStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    SENDING = "SENDING", "Sending"  # claimed by a worker; its outcome is not recorded yet
    SENT = "SENT", "Sent"
    FAILED = "FAILED", "Failed"
    SKIPPED = "SKIPPED", "Skipped"
    CANCELLED = "CANCELLED", "Cancelled"


FINAL_RECIPIENT_STATUSES = (
    RecipientStatus.SENT,
    RecipientStatus.FAILED,
    RecipientStatus.SKIPPED,
    RecipientStatus.CANCELLED,
)


class ChunkStatus(models.TextChoices):
    PENDING = "PENDING", "Not queued yet"
    QUEUED = "QUEUED", "Queued"
    RUNNING = "RUNNING", "Running"
    DONE = "DONE", "Done"
    DEAD_LETTERED = "DEAD_LETTERED", "Dead-lettered"


class RecipientSource(models.TextChoices):
    CONTACT_IDS = "contactIds", "Contact ids"
    FILTER = "filter", "Contact filter"
    CSV = "csv", "CSV upload"
    SEGMENT = "segment", "Saved segment"
    TAG = "tag", "Tag"
    RETRY = "retry", "Failed recipients of another job"


class BulkJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name="job id")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    # The message, as for a single send (messaging's fields).
    message_type = models.CharField(max_length=16, default="text")
    content = models.TextField(blank=True)
    template_name = models.CharField(max_length=512, blank=True)
    template_language = models.CharField(max_length=16, blank=True)
    template_parameters = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    html = models.TextField(blank=True)
    # WhatsApp: the allowlisted number to send from; blank = per recipient, as a single send chooses
    # (the number the contact last wrote to, whose service window it is, else the first allowed).
    origination_phone_number_id = models.CharField(max_length=128, blank=True)

    status = models.CharField(
        max_length=24, choices=JobStatus.choices, default=JobStatus.AWAITING_CONFIRMATION, db_index=True
    )
    status_reason = models.TextField(blank=True)
    recipient_source = models.CharField(max_length=16, choices=RecipientSource.choices)
    source_details = models.JSONField(default=dict, blank=True)
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries")
    # The pre-flight as computed at creation: totals by reason, the count to confirm, tier figures.
    preflight = models.JSONField(default=dict, blank=True)

    # Counters: always recomputed from the recipient rows (bulk.execution.job_refresh_counters).
    total_recipients = models.PositiveIntegerField(default=0)
    sent_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    cancelled_count = models.PositiveIntegerField(default=0)
    pending_count = models.PositiveIntegerField(default=0)
    unknown_count = models.PositiveIntegerField(default=0, help_text="FAILED recipients whose outcome is unknown")

    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    resumed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    report_s3_key = models.CharField(max_length=1024, blank=True)
    report_csv_s3_key = models.CharField(max_length=1024, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "bulk job"

    def __str__(self) -> str:
        return f"{self.channel} bulk job {self.id} [{self.status}]"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_JOB_STATUSES

    @property
    def processed_count(self) -> int:
        return self.sent_count + self.failed_count + self.skipped_count + self.cancelled_count


class BulkRecipient(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name="recipient id")
    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="recipients")
    # Position among the job's sendable recipients (chunks are ranges of it); NULL when the
    # pre-flight already refused the recipient, so it belongs to no chunk.
    sequence = models.PositiveIntegerField(null=True, blank=True)
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # What the operator gave: the CSV value, or the contact's address at pre-flight time.
    address = models.CharField(max_length=320, blank=True)
    origination_phone_number_id = models.CharField(max_length=128, blank=True)
    # Pre-flight: a WhatsApp template to a contact outside the 24-hour window opens a
    # business-initiated conversation (counted against the tier).
    opens_conversation = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=RecipientStatus.choices, default=RecipientStatus.PENDING)
    error_code = models.CharField(max_length=64, blank=True)
    error_details = models.TextField(blank=True)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["job", "sequence"]
        verbose_name = "bulk recipient"
        constraints = [
            models.UniqueConstraint(
                fields=["job", "contact"], condition=Q(contact__isnull=False), name="bulk_recipient_contact_once"
            ),
            models.UniqueConstraint(
                fields=["job", "sequence"], condition=Q(sequence__isnull=False), name="bulk_recipient_sequence_once"
            ),
        ]
        indexes = [
            models.Index(fields=["job", "status"], name="bulk_recipient_job_status"),
            models.Index(fields=["job", "sequence"], name="bulk_recipient_job_sequence"),
        ]

    def __str__(self) -> str:
        return f"{self.address or self.contact_id} [{self.status}]"

    @property
    def outcome_unknown(self) -> bool:
        return self.error_code == OUTCOME_UNKNOWN


class BulkJobChunk(models.Model):
    """Recipients [start_sequence, end_sequence) of a job: one Celery message on bulk-queue.

    A worker takes the chunk with a lease (lease_owner, lease_expires_at) that a heartbeat renews
    while it runs; a second delivery of the same chunk sees the live lease and waits, and a worker
    that died leaves a lease that expires, after which the next delivery (or the sweeper) takes over.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name="chunk id")
    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="chunks")
    sequence = models.PositiveIntegerField()
    start_sequence = models.PositiveIntegerField()
    end_sequence = models.PositiveIntegerField(help_text="exclusive")
    status = models.CharField(max_length=16, choices=ChunkStatus.choices, default=ChunkStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=128, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["job", "sequence"]
        verbose_name = "bulk job chunk"
        constraints = [models.UniqueConstraint(fields=["job", "sequence"], name="bulk_chunk_sequence_once")]
        indexes = [models.Index(fields=["status", "lease_expires_at"], name="bulk_chunk_status_lease")]

    def __str__(self) -> str:
        return f"chunk {self.sequence} of {self.job_id} [{self.status}]"

    @property
    def size(self) -> int:
        return self.end_sequence - self.start_sequence
