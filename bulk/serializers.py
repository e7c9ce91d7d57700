"""JSON for bulk jobs (camelCase: jobId, totalRecipients, sentCount…). Types only; bulk.services decides."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bulk.execution import job_counts
from bulk.models import BulkJob, BulkRecipient, JobStatus
from contacts.models import Channel
from wecare import jsonsafe

MAX_CSV_BYTES = 10 * 1024 * 1024


class JSONStringOrValueField(serializers.Field):
    """A JSON value, or (multipart forms, where every field is text) a string holding JSON."""

    def __init__(self, *, expected: tuple[type, ...], **kwargs):
        self.expected = expected
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = jsonsafe.loads(data)
            except ValueError:
                raise serializers.ValidationError("Must be JSON.") from None
        if not isinstance(data, self.expected):
            names = " or ".join(
                "a list" if t is list else "an object" if t is dict else t.__name__ for t in self.expected
            )
            raise serializers.ValidationError(f"Must be {names}.")
        return data

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "array", "items": {"type": "string", "format": "uuid"}})
class ContactIdsField(JSONStringOrValueField):
    def __init__(self, **kwargs):
        super().__init__(expected=(list,), **kwargs)


@extend_schema_field(
    {
        "type": "object",
        "properties": {"search": {"type": "string"}, "optIn": {"type": "boolean", "nullable": True}},
        "additionalProperties": False,
    }
)
class ContactFilterField(JSONStringOrValueField):
    def __init__(self, **kwargs):
        super().__init__(expected=(dict,), **kwargs)


@extend_schema_field(
    {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object", "additionalProperties": True}]}
)
class TemplateParametersField(JSONStringOrValueField):
    def __init__(self, **kwargs):
        super().__init__(expected=(list, dict), **kwargs)


class BulkJobCreateSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    contactIds = ContactIdsField(required=False)
    filter = ContactFilterField(required=False)
    csv = serializers.FileField(required=False, help_text="CSV of phone numbers and/or emails (header: phone, email)")
    segmentId = serializers.UUIDField(required=False, help_text="A saved segment: its members when the job is created")
    tag = serializers.CharField(required=False, max_length=64, help_text="Every contact with this tag")
    # The message, named as for POST /api/messages/.
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    templateName = serializers.CharField(required=False, allow_blank=True, default="")
    templateLanguage = serializers.CharField(required=False, allow_blank=True, default="")
    templateParameters = TemplateParametersField(required=False)
    subject = serializers.CharField(required=False, allow_blank=True, default="")
    html = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    originationPhoneNumberId = serializers.CharField(required=False, allow_blank=True, default="")
    media = serializers.FileField(required=False)

    def validate_csv(self, value):
        if value.size > MAX_CSV_BYTES:
            raise serializers.ValidationError(f"The CSV file may be at most {MAX_CSV_BYTES // (1024 * 1024)} MB.")
        return value

    def validate(self, attrs):
        if attrs.get("media") is not None:
            raise serializers.ValidationError(
                {"media": ["Bulk jobs send text, templates or email; media is not supported."]}
            )
        given = [name for name in ("contactIds", "filter", "csv", "segmentId", "tag") if attrs.get(name) is not None]
        if len(given) != 1:
            raise serializers.ValidationError(
                {
                    "recipients": [
                        "Give the recipients exactly one way: contactIds, filter, segmentId, tag or a csv file."
                    ]
                }
            )
        return attrs


class BulkConfirmSerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=0, help_text="The pre-flight's willSend count")


class BulkRetrySerializer(serializers.Serializer):
    includeUnknownOutcome = serializers.BooleanField(required=False, default=False)


def _progress(job: BulkJob, counts: dict) -> dict:
    total = counts["total"]
    done = counts["sent"] + counts["failed"] + counts["skipped"] + counts["cancelled"]
    return {
        "totalRecipients": total,
        "sentCount": counts["sent"],
        "failedCount": counts["failed"],
        "skippedCount": counts["skipped"],
        "cancelledCount": counts["cancelled"],
        "pendingCount": counts["pending"],
        "sendingCount": counts["sending"],
        "unknownOutcomeCount": counts["unknown"],
        "percentDone": round(100.0 * done / total, 1) if total else 100.0,
    }


class BulkJobSerializer(serializers.ModelSerializer):
    """A job with its progress. Detail views compute the counters live from the recipient rows."""

    jobId = serializers.UUIDField(source="id", read_only=True)
    createdBy = serializers.SerializerMethodField()
    messageType = serializers.CharField(source="message_type")
    text = serializers.CharField(source="content")
    templateName = serializers.CharField(source="template_name")
    templateLanguage = serializers.CharField(source="template_language")
    templateParameters = serializers.JSONField(source="template_parameters")
    originationPhoneNumberId = serializers.JSONField(source="origination_phone_number_id")
    statusReason = serializers.CharField(source="status_reason")
    recipientSource = serializers.CharField(source="recipient_source")
    sourceDetails = serializers.JSONField(source="source_details")
    retryOf = serializers.UUIDField(source="retry_of_id", allow_null=True)
    progress = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")
    confirmedAt = serializers.DateTimeField(source="confirmed_at")
    startedAt = serializers.DateTimeField(source="started_at")
    pausedAt = serializers.DateTimeField(source="paused_at")
    resumedAt = serializers.DateTimeField(source="resumed_at")
    cancelledAt = serializers.DateTimeField(source="cancelled_at")
    completedAt = serializers.DateTimeField(source="completed_at")
    reportS3Key = serializers.CharField(source="report_s3_key")
    confirmation = serializers.SerializerMethodField()

    class Meta:
        model = BulkJob
        fields = [
            "jobId",
            "status",
            "statusReason",
            "channel",
            "messageType",
            "text",
            "templateName",
            "templateLanguage",
            "templateParameters",
            "subject",
            "html",
            "originationPhoneNumberId",
            "recipientSource",
            "sourceDetails",
            "retryOf",
            "progress",
            "preflight",
            "confirmation",
            "createdBy",
            "createdAt",
            "updatedAt",
            "confirmedAt",
            "startedAt",
            "pausedAt",
            "resumedAt",
            "cancelledAt",
            "completedAt",
            "reportS3Key",
        ]
        read_only_fields = fields

    def get_createdBy(self, job: BulkJob) -> str | None:
        return job.created_by.email if job.created_by_id and job.created_by else None

    def get_progress(self, job: BulkJob) -> dict:
        if self.context.get("live_counts"):
            counts = job_counts(job.pk)
        else:
            counts = {
                "total": job.total_recipients,
                "sent": job.sent_count,
                "failed": job.failed_count,
                "skipped": job.skipped_count,
                "cancelled": job.cancelled_count,
                "pending": job.pending_count,
                "sending": 0,
                "unknown": job.unknown_count,
            }
        return _progress(job, counts)

    def get_confirmation(self, job: BulkJob) -> dict | None:
        if job.status != JobStatus.AWAITING_CONFIRMATION:
            return None
        return {
            "required": True,
            "count": job.preflight.get("willSend"),
            "hint": f'POST /api/bulk/jobs/{job.pk}/confirm with {{"count": {job.preflight.get("willSend")}}}',
        }


class BulkRecipientSerializer(serializers.ModelSerializer):
    recipientId = serializers.UUIDField(source="id", read_only=True)
    contactId = serializers.UUIDField(source="contact_id", allow_null=True)
    originationPhoneNumberId = serializers.CharField(source="origination_phone_number_id")
    opensConversation = serializers.BooleanField(source="opens_conversation")
    errorCode = serializers.CharField(source="error_code")
    errorDetails = serializers.CharField(source="error_details")
    messageId = serializers.UUIDField(source="message_id", allow_null=True)
    sentAt = serializers.DateTimeField(source="sent_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    class Meta:
        model = BulkRecipient
        fields = [
            "recipientId",
            "sequence",
            "contactId",
            "address",
            "originationPhoneNumberId",
            "opensConversation",
            "status",
            "errorCode",
            "errorDetails",
            "messageId",
            "sentAt",
            "updatedAt",
        ]
        read_only_fields = fields
