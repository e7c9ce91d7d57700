from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from contacts.models import Channel, Contact

MESSAGE_RETENTION_DAYS = 30
DLQ_RETENTION_DAYS = 7


class Direction(models.TextChoices):
    OUTBOUND = "outbound", "Outbound"
    INBOUND = "inbound", "Inbound"


class MessageType(models.TextChoices):
    TEXT = "text", "Text"
    IMAGE = "image", "Image"
    VIDEO = "video", "Video"
    AUDIO = "audio", "Audio"
    DOCUMENT = "document", "Document"
    STICKER = "sticker", "Sticker"
    LOCATION = "location", "Location"
    CONTACTS = "contacts", "Contacts"
    TEMPLATE = "template", "Template"
    REACTION = "reaction", "Reaction"
    INTERACTIVE = "interactive", "Interactive"
    BUTTON = "button", "Button"
    EMAIL = "email", "Email"
    UNKNOWN = "unknown", "Unknown"


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    FAILED = "failed", "Failed"
    RECEIVED = "received", "Received"


# Status moves only forward. Failed may replace anything before read.
STATUS_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENT: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.READ: 3,
}


def status_may_advance(current: str, new: str) -> bool:
    if current == new or current in (MessageStatus.FAILED, MessageStatus.RECEIVED):
        return False
    if new == MessageStatus.FAILED:
        return current != MessageStatus.READ
    return STATUS_RANK.get(new, -1) > STATUS_RANK.get(current, -1)


def _message_expiry():
    return timezone.now() + timedelta(days=MESSAGE_RETENTION_DAYS)


def _dlq_expiry():
    return timezone.now() + timedelta(days=DLQ_RETENTION_DAYS)


class MessageQuerySet(models.QuerySet):
    def live(self):
        """Rows not yet expired: lists and the API leave expired rows out before the purge runs."""
        return self.filter(expires_at__gt=timezone.now())


class Message(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name="message id")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="messages")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    direction = models.CharField(max_length=16, choices=Direction.choices, default=Direction.OUTBOUND)
    message_type = models.CharField(max_length=16, choices=MessageType.choices, default=MessageType.TEXT)
    content = models.TextField(blank=True)
    template_name = models.CharField(max_length=512, blank=True)
    template_language = models.CharField(max_length=16, blank=True)
    template_parameters = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    html = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    error_code = models.CharField(max_length=64, blank=True)
    error_details = models.JSONField(default=dict, blank=True)
    provider_message_id = models.CharField(max_length=256, blank=True, db_index=True)
    # Meta's wamid: inbound messages carry it; outbound ones learn it from the first status event.
    whatsapp_message_id = models.CharField(max_length=256, null=True, blank=True)
    origination_phone_number_id = models.CharField(max_length=128, blank=True)
    sender_name = models.CharField(max_length=256, blank=True)
    # Inbound WhatsApp: Meta's message object as received (location, contacts, reply ids, reaction target).
    whatsapp_payload = models.JSONField(default=dict, blank=True)
    # Inbound WhatsApp: the message was an opt-out/opt-in keyword and changed (or confirmed) consent.
    keyword_action = models.CharField(
        max_length=16, choices=[("opt_out", "Opt-out keyword"), ("opt_in", "Opt-in keyword")], blank=True, default=""
    )
    segments = models.PositiveIntegerField(null=True, blank=True)
    # WhatsApp: Meta's pricing category from the status events' pricing block (marketing, utility, ...).
    pricing_category = models.CharField(max_length=32, blank=True)
    # What a channel needs beyond the text: voice {"voiceId", "textType"}, RCS {"suggestions"}.
    options = models.JSONField(default=dict, blank=True)
    dry_run = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    # Outbound: a worker sending this message holds it until then (at-least-once tasks send once).
    locked_until = models.DateTimeField(null=True, blank=True)
    # Outbound: a replay from the outbound DLQ is a new message pointing at the one that failed.
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays", editable=False
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Outbound email: the double opt-in confirmation this message is (the gate's one exception to the
    # email opt-in, messaging.safety); one message per confirmation.
    email_confirmation = models.OneToOneField(
        "webforms.EmailConfirmation",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="message",
        editable=False,
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(default=_message_expiry, db_index=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        permissions = [("send_message", "Can send messages")]
        constraints = [
            models.UniqueConstraint(
                fields=["whatsapp_message_id"],
                condition=Q(whatsapp_message_id__isnull=False),
                name="message_whatsapp_id_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["contact", "-created_at"], name="message_contact_recent"),
            models.Index(fields=["status", "channel"], name="message_status_channel"),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.channel} {self.message_type} to {self.contact_id} [{self.status}]"


VOICE_CALL_RETENTION_DAYS = 90


def _voice_call_expiry():
    return timezone.now() + timedelta(days=VOICE_CALL_RETENTION_DAYS)


class VoiceCallStatus(models.TextChoices):
    DRY_RUN = "dry_run", "Dry run (not called)"
    INITIATED = "initiated", "Initiated"
    RINGING = "ringing", "Ringing"
    ANSWERED = "answered", "Answered"
    COMPLETED = "completed", "Completed"
    BUSY = "busy", "Busy"
    NO_ANSWER = "no_answer", "No answer"
    FAILED = "failed", "Failed"


# A call moves forward only; busy, no answer, failed and completed are final.
VOICE_CALL_RANK = {
    VoiceCallStatus.INITIATED: 0,
    VoiceCallStatus.RINGING: 1,
    VoiceCallStatus.ANSWERED: 2,
    VoiceCallStatus.COMPLETED: 3,
    VoiceCallStatus.BUSY: 3,
    VoiceCallStatus.NO_ANSWER: 3,
    VoiceCallStatus.FAILED: 3,
}


class VoiceCall(models.Model):
    """One text-to-speech call (SendVoiceMessage), kept 90 days: longer than its message's 30, so the
    message link is cleared when the message is purged and the call keeps its own copy of the facts."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name="call id")
    message = models.OneToOneField(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="voice_call"
    )
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="voice_calls")
    origination = models.CharField(max_length=256)
    destination = models.CharField(max_length=20)
    body = models.TextField()
    text_type = models.CharField(max_length=8, choices=[("TEXT", "Text"), ("SSML", "SSML")], default="TEXT")
    voice = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=VoiceCallStatus.choices, default=VoiceCallStatus.INITIATED)
    status_description = models.CharField(max_length=256, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=256, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(default=_voice_call_expiry, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["contact", "-created_at"], name="voice_call_contact_recent")]

    def __str__(self) -> str:
        return f"call to {self.destination} [{self.status}]"


class MediaFile(models.Model):
    """A file in the private media bucket, attached to a message; served by pre-signed URL."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name="file id")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="media")
    s3_key = models.CharField(max_length=1024)
    content_type = models.CharField(max_length=128, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    filename = models.CharField(max_length=255, blank=True)
    whatsapp_media_id = models.CharField(max_length=128, blank=True)
    # When Meta got the file (PostWhatsAppMessageMedia); WhatsApp keeps media 30 days.
    whatsapp_media_uploaded_at = models.DateTimeField(null=True, blank=True)
    uploaded_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.s3_key


class ProviderAttempt(models.Model):
    """One provider call made (or, in DRY_RUN, not made) for a message: written as "started" before the
    call and finished after it, so a worker that dies in between leaves the evidence that the provider
    may have been called. "Was the provider called?" is answered here, never inferred."""

    class Outcome(models.TextChoices):
        STARTED = "started", "Started (no answer recorded)"
        SUCCEEDED = "succeeded", "Succeeded"
        DRY_RUN = "dry_run", "Dry run (not called)"
        TRANSIENT_ERROR = "transient_error", "Transient error"
        PERMANENT_ERROR = "permanent_error", "Permanent error"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="provider_attempts")
    service = models.CharField(max_length=64)
    operation = models.CharField(max_length=64)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.STARTED)
    provider_request_id = models.CharField(max_length=128, blank=True)
    provider_message_id = models.CharField(max_length=256, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_text = models.TextField(blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        indexes = [models.Index(fields=["message", "started_at"], name="attempt_message_started")]

    def __str__(self) -> str:
        return f"{self.operation} for {self.message_id} [{self.outcome}]"


class TemplateStatus(models.TextChoices):
    APPROVED = "APPROVED", "Approved"
    PENDING = "PENDING", "Pending"
    REJECTED = "REJECTED", "Rejected"
    PAUSED = "PAUSED", "Paused"
    DISABLED = "DISABLED", "Disabled"


class WhatsAppTemplate(models.Model):
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16, default="en_US")
    category = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=16, choices=TemplateStatus.choices, default=TemplateStatus.PENDING)
    waba_id = models.CharField(max_length=128, blank=True)
    meta_template_id = models.CharField(max_length=128, blank=True)
    body = models.TextField(blank=True, help_text="Body text with {{1}} or {{name}} placeholders.")
    # Placeholders of the body, in order: ["1", "2"] (positional) or ["name", "order"] (named).
    body_parameters = models.JSONField(default=list, blank=True)
    parameter_format = models.CharField(
        max_length=16, choices=[("positional", "Positional"), ("named", "Named")], default="positional"
    )
    components = models.JSONField(default=list, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "language"]
        constraints = [models.UniqueConstraint(fields=["name", "language"], name="template_name_language_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"


class InboundEvent(models.Model):
    """A verified SNS notification, stored raw before processing so nothing is lost."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # SNS retries deliver the same MessageId again: one row per SNS message.
    sns_message_id = models.CharField(max_length=128, unique=True)
    topic_arn = models.CharField(max_length=256)
    body = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # When the relay last handed the event to the broker (messaging.inbound.outbox); null: not yet.
    relayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            # The outbox: pending events, oldest first; a small index however many are processed.
            models.Index(fields=["received_at"], name="inbound_event_outbox", condition=models.Q(status="pending"))
        ]

    def __str__(self) -> str:
        return f"SNS {self.sns_message_id} [{self.status}]"


class DLQMessage(models.Model):
    """A dead-lettered payload and its replay state (inbound-dlq, outbound-dlq, bulk-dlq)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for replay"
        REPLAYED = "replayed", "Replayed"
        PARKED = "parked", "Parked for a human"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name="DLQ message id")
    original_message_id = models.CharField(max_length=256, db_index=True)
    queue_name = models.CharField(max_length=128, db_index=True)
    retry_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    last_error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set while a replay runs this message's handler: a second replay at the same time leaves it alone.
    replay_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(default=_dlq_expiry, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["queue_name", "original_message_id"], name="dlq_message_unique"),
        ]
        permissions = [("replay_dlqmessage", "Can replay dead-lettered messages")]

    def __str__(self) -> str:
        return f"{self.queue_name}:{self.original_message_id} [{self.status}, {self.retry_count} tries]"


class SafetyRefusalCount(models.Model):
    """How often the safety gate refused, per day, code and channel (messaging.safety counts)."""

    day = models.DateField()
    code = models.CharField(max_length=32)
    channel = models.CharField(max_length=16)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "code", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["day", "code", "channel"], name="safety_refusal_count_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.code} {self.channel}: {self.count}"


class MessageUsage(models.Model):
    """Outbound messages handed to a provider (or dry-run), per day, for cost reports.

    Templates are counted per template and category, free-form messages (text, media, SMS, email)
    per channel; business-initiated WhatsApp conversations separately. Kept beyond the 30 days of
    the messages themselves.
    """

    class Kind(models.TextChoices):
        TEMPLATE = "template", "Template"
        FREE_FORM = "free_form", "Free-form"

    day = models.DateField()
    channel = models.CharField(max_length=16, choices=Channel.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    template_name = models.CharField(max_length=512, blank=True)
    template_language = models.CharField(max_length=16, blank=True)
    category = models.CharField(max_length=32, blank=True)
    origination_phone_number_id = models.CharField(max_length=128, blank=True)
    dry_run = models.BooleanField(default=False)
    count = models.PositiveIntegerField(default=0)
    business_initiated = models.PositiveIntegerField(default=0)
    segments = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "channel", "kind", "template_name"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "day",
                    "channel",
                    "kind",
                    "template_name",
                    "template_language",
                    "category",
                    "origination_phone_number_id",
                    "dry_run",
                ],
                name="message_usage_unique",
            ),
        ]

    def __str__(self) -> str:
        what = self.template_name or self.kind
        return f"{self.day} {self.channel} {what}: {self.count}"


class SuppressionReason(models.TextChoices):
    """Why an address is suppressed (messaging.feedback). Stable values: reports and the API read them."""

    HARD_BOUNCE = "hard_bounce", "Hard bounce"
    COMPLAINT = "complaint", "Complaint (marked as spam)"
    SOFT_BOUNCES = "soft_bounces", "Soft bounces in a row"
    ACCOUNT_SUPPRESSED = "account_suppressed", "On the SES suppression list"
    SMS_INVALID = "sms_invalid", "Invalid phone number"
    SMS_BLOCKED = "sms_blocked", "Blocked by the phone or carrier"
    WHATSAPP_UNDELIVERABLE = "whatsapp_undeliverable", "Undeliverable on WhatsApp (131026)"
    WHATSAPP_MARKETING_LIMIT = "whatsapp_marketing_limit", "WhatsApp per-user marketing limit (131049)"
    WHATSAPP_MARKETING_STOPPED = "whatsapp_marketing_stopped", "Stopped WhatsApp marketing messages (131050)"


class SuppressionQuerySet(models.QuerySet):
    def active(self, now=None):
        """Not lifted and not expired: the gate refuses sends to these."""
        now = now or timezone.now()
        return self.filter(lifted_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class Suppression(models.Model):
    """An address the platform must not send to on one channel (for WhatsApp: maybe one template category),
    because the provider told us sending again would fail or hurt: a hard bounce, a complaint, an invalid
    number, a WhatsApp permanent failure. Written by messaging.feedback; lifted (never deleted) by an Admin.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name="suppression id")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    # Email lower-cased, or a phone number in E.164: the address, whichever contact holds it now.
    address = models.CharField(max_length=254)
    # WhatsApp template category it applies to (MARKETING); empty: every message on the channel.
    category = models.CharField(max_length=32, blank=True, default="")
    reason = models.CharField(max_length=32, choices=SuppressionReason.choices)
    detail = models.CharField(max_length=1000, blank=True)  # the provider's words (diagnostic code, carrier)
    provider_event_id = models.CharField(max_length=256, blank=True)
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="suppressions")
    created_at = models.DateTimeField(default=timezone.now, verbose_name="since")
    expires_at = models.DateTimeField(null=True, blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lift_reason = models.CharField(max_length=500, blank=True)

    objects = SuppressionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "address", "category"],
                condition=Q(lifted_at__isnull=True),
                name="suppression_unique_unlifted",
            ),
        ]
        indexes = [models.Index(fields=["channel", "address"], name="suppression_address")]
        permissions = [("lift_suppression", "Can lift a suppression")]

    def __str__(self) -> str:
        what = f" ({self.category})" if self.category else ""
        return f"{self.channel} {self.address}{what}: {self.get_reason_display()}"


class EmailSoftBounce(models.Model):
    """Soft bounces in a row per email address; a delivery resets the count (messaging.feedback.ses)."""

    address = models.CharField(max_length=254, unique=True)
    count = models.PositiveIntegerField(default=0)
    last_at = models.DateTimeField(null=True, blank=True)
    last_detail = models.CharField(max_length=1000, blank=True)
    # The SES feedbackId counted last: a replayed event is not counted twice.
    last_event_id = models.CharField(max_length=256, blank=True)

    def __str__(self) -> str:
        return f"{self.address}: {self.count} soft bounce(s) in a row"
