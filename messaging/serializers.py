"""JSON for messages in the API's names (messageId, contactId, messageType, dryRun, createdAt...).

Serializers check shapes; the rules live in messaging.safety and messaging.services.
"""

from __future__ import annotations

from rest_framework import serializers

from contacts.models import Channel
from messaging.channels import whatsapp as whatsapp_channel
from messaging.channels.whatsapp import MEDIA_TYPES
from messaging.models import MediaFile, Message, VoiceCall
from messaging.selectors import media_presigned_url
from wecare import jsonsafe


class MediaFileSerializer(serializers.ModelSerializer):
    fileId = serializers.UUIDField(source="id", read_only=True)
    contentType = serializers.CharField(source="content_type", read_only=True)
    whatsappMediaId = serializers.CharField(source="whatsapp_media_id", read_only=True)
    uploadedAt = serializers.DateTimeField(source="uploaded_at", read_only=True)
    url = serializers.SerializerMethodField(help_text="Pre-signed GET link, valid for one hour.")

    class Meta:
        model = MediaFile
        fields = ["fileId", "contentType", "size", "filename", "whatsappMediaId", "uploadedAt", "url"]

    def get_url(self, obj: MediaFile) -> str:
        return media_presigned_url(obj)


class MessageSerializer(serializers.ModelSerializer):
    messageId = serializers.UUIDField(source="id", read_only=True)
    contactId = serializers.UUIDField(source="contact_id", read_only=True)
    messageType = serializers.CharField(source="message_type", read_only=True)
    templateName = serializers.CharField(source="template_name", read_only=True)
    templateLanguage = serializers.CharField(source="template_language", read_only=True)
    templateParameters = serializers.JSONField(source="template_parameters", read_only=True)
    errorCode = serializers.CharField(source="error_code", read_only=True)
    errorDetails = serializers.JSONField(source="error_details", read_only=True)
    providerMessageId = serializers.CharField(source="provider_message_id", read_only=True)
    whatsappMessageId = serializers.CharField(source="whatsapp_message_id", read_only=True, allow_null=True)
    originationPhoneNumberId = serializers.CharField(source="origination_phone_number_id", read_only=True)
    senderName = serializers.CharField(source="sender_name", read_only=True)
    dryRun = serializers.BooleanField(
        source="dry_run", read_only=True, help_text="True: SEND_MODE=DRY_RUN, nothing was sent to anyone."
    )
    statusLabel = serializers.SerializerMethodField()
    requestedBy = serializers.SerializerMethodField()
    replayOf = serializers.UUIDField(source="replay_of_id", read_only=True, allow_null=True)
    options = serializers.JSONField(read_only=True, help_text="Voice: voiceId, textType; RCS: suggestions.")
    media = MediaFileSerializer(many=True, read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)
    sentAt = serializers.DateTimeField(source="sent_at", read_only=True)
    deliveredAt = serializers.DateTimeField(source="delivered_at", read_only=True)
    readAt = serializers.DateTimeField(source="read_at", read_only=True)
    failedAt = serializers.DateTimeField(source="failed_at", read_only=True)
    expiresAt = serializers.DateTimeField(source="expires_at", read_only=True)

    class Meta:
        model = Message
        fields = [
            "messageId",
            "contactId",
            "channel",
            "direction",
            "messageType",
            "content",
            "templateName",
            "templateLanguage",
            "templateParameters",
            "subject",
            "html",
            "status",
            "statusLabel",
            "dryRun",
            "errorCode",
            "errorDetails",
            "providerMessageId",
            "whatsappMessageId",
            "originationPhoneNumberId",
            "senderName",
            "segments",
            "options",
            "attempts",
            "requestedBy",
            "replayOf",
            "media",
            "createdAt",
            "updatedAt",
            "sentAt",
            "deliveredAt",
            "readAt",
            "failedAt",
            "expiresAt",
        ]
        read_only_fields = fields

    def get_statusLabel(self, obj: Message) -> str:  # noqa: N802 - JSON name
        if obj.dry_run:
            return f"{obj.status} (dry run: nothing was sent)"
        return obj.get_status_display()

    def get_requestedBy(self, obj: Message) -> str | None:  # noqa: N802 - JSON name
        return obj.requested_by.email if obj.requested_by_id else None


class LenientJSONField(serializers.JSONField):
    """JSON in a JSON body, or a JSON string in a multipart form (templateParameters with a file)."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = jsonsafe.loads(data) if data.strip() else None
            except ValueError:
                self.fail("invalid")
        return super().to_internal_value(data)


class MessageSendSerializer(serializers.Serializer):
    """POST /api/messages/: one of text | media (+ caption text) | template | email subject + body."""

    contactId = serializers.UUIDField()
    channel = serializers.ChoiceField(choices=Channel.choices)
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    media = serializers.FileField(required=False, allow_empty_file=True)
    mediaType = serializers.ChoiceField(choices=MEDIA_TYPES, required=False)
    templateName = serializers.CharField(required=False, allow_blank=True, default="")
    templateLanguage = serializers.CharField(required=False, allow_blank=True, default="")
    templateParameters = LenientJSONField(required=False, allow_null=True, default=None)
    templateHeader = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=1024, help_text="A text header's parameter"
    )
    templateButtons = LenientJSONField(
        required=False,
        allow_null=True,
        default=None,
        help_text='Button parameters by index: URL suffix or quick-reply payload, e.g. {"0": "summer-sale"}',
    )
    subject = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    html = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    originationPhoneNumberId = serializers.CharField(required=False, allow_blank=True, default="")
    options = LenientJSONField(
        required=False,
        allow_null=True,
        default=None,
        help_text='Voice: {"voiceId": "JOANNA", "textType": "TEXT" | "SSML"}; RCS: {"suggestions": '
        '[{"type": "reply" | "url" | "dial", "text", "postbackData"?, "url"?, "phone"?}]} (the gate checks them).',
    )

    def validate_options(self, value):
        if value is not None and not isinstance(value, dict):
            raise serializers.ValidationError("Give an object.")
        return value

    def validate_templateButtons(self, value):  # noqa: N802 - JSON name
        if value is not None and not isinstance(value, dict):
            raise serializers.ValidationError('Give an object by button index, e.g. {"0": "summer-sale"}.')
        return value

    def validate_templateParameters(self, value):  # noqa: N802 - JSON name
        if value is not None and not isinstance(value, list | dict):
            raise serializers.ValidationError("Give a list (positional {{1}}) or an object (named {{name}}).")
        return value

    def validate_media(self, value):
        # Django counted the size while streaming the upload to disk: refuse before anything reads it.
        if value is not None and value.size > whatsapp_channel.MEDIA_MAX_BYTES:
            raise serializers.ValidationError(f"The file is {value.size} bytes; the largest WhatsApp file is 100 MB.")
        return value

    def validate(self, attrs):
        template = attrs.get("templateName")
        if template and attrs.get("text"):
            # A template's media header takes the media file; text belongs to free-form messages.
            raise serializers.ValidationError("Give text or media, or a template: not both.")
        if attrs.get("mediaType") and not attrs.get("media"):
            raise serializers.ValidationError({"mediaType": ["mediaType needs a media file."]})
        return attrs


class VoiceCallSerializer(serializers.ModelSerializer):
    """A voice call (kept 90 days): GET /api/voice-calls/."""

    callId = serializers.UUIDField(source="id", read_only=True)
    messageId = serializers.UUIDField(source="message_id", read_only=True, allow_null=True)
    contactId = serializers.UUIDField(source="contact_id", read_only=True)
    textType = serializers.CharField(source="text_type", read_only=True)
    statusDescription = serializers.CharField(source="status_description", read_only=True)
    durationSeconds = serializers.IntegerField(source="duration_seconds", read_only=True, allow_null=True)
    providerMessageId = serializers.CharField(source="provider_message_id", read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    answeredAt = serializers.DateTimeField(source="answered_at", read_only=True, allow_null=True)
    endedAt = serializers.DateTimeField(source="ended_at", read_only=True, allow_null=True)
    expiresAt = serializers.DateTimeField(source="expires_at", read_only=True)

    class Meta:
        model = VoiceCall
        fields = [
            "callId", "messageId", "contactId", "origination", "destination", "body", "textType", "voice",
            "status", "statusDescription", "durationSeconds", "providerMessageId", "createdAt", "answeredAt",
            "endedAt", "expiresAt",
        ]  # fmt: skip
        read_only_fields = fields
