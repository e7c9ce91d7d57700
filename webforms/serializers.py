"""REST shapes of forms and submissions (camelCase, as the rest of the API)."""

from __future__ import annotations

from rest_framework import serializers

from contacts.serializers import StrictBooleanField
from webforms.models import Ask, FormSubmission, FormVersion


class FormVersionSerializer(serializers.ModelSerializer):
    versionId = serializers.UUIDField(source="id", read_only=True)
    askName = serializers.CharField(source="ask_name", read_only=True)
    askPhone = serializers.CharField(source="ask_phone", read_only=True)
    askEmail = serializers.CharField(source="ask_email", read_only=True)
    consentWording = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = FormVersion
        fields = ["versionId", "number", "title", "intro", "askName", "askPhone", "askEmail", "attributes",
                  "consentWording", "createdAt"]  # fmt: skip
        read_only_fields = fields

    def get_consentWording(self, version: FormVersion) -> dict[str, str]:  # noqa: N802 - the JSON name
        return version.consent_wording()


class FormSerializer(serializers.Serializer):
    """Reads a form with its current version; writes go through webforms.services (a new version when
    anything a visitor reads changes)."""

    formId = serializers.UUIDField(source="id", read_only=True)
    slug = serializers.SlugField(max_length=80)
    name = serializers.CharField(max_length=200)
    isPublished = StrictBooleanField(source="is_published", required=False)
    emailDoubleOptIn = StrictBooleanField(source="email_double_opt_in", required=False)
    embedOrigins = serializers.ListField(
        child=serializers.CharField(max_length=300), source="embed_origin_list", required=False
    )
    currentVersion = FormVersionSerializer(source="current_version", read_only=True)
    # Writes only: the content of the (next) version.
    title = serializers.CharField(max_length=200, write_only=True, required=False)
    intro = serializers.CharField(write_only=True, required=False, allow_blank=True)
    askName = serializers.ChoiceField(Ask.choices, source="ask_name", write_only=True, required=False)
    askPhone = serializers.ChoiceField(Ask.choices, source="ask_phone", write_only=True, required=False)
    askEmail = serializers.ChoiceField(Ask.choices, source="ask_email", write_only=True, required=False)
    attributes = serializers.ListField(child=serializers.CharField(max_length=40), write_only=True, required=False)
    consentWhatsapp = serializers.CharField(
        source="consent_whatsapp", write_only=True, required=False, allow_blank=True
    )
    consentSms = serializers.CharField(source="consent_sms", write_only=True, required=False, allow_blank=True)
    consentEmail = serializers.CharField(source="consent_email", write_only=True, required=False, allow_blank=True)
    consentVoice = serializers.CharField(source="consent_voice", write_only=True, required=False, allow_blank=True)
    consentRcs = serializers.CharField(source="consent_rcs", write_only=True, required=False, allow_blank=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)


class FormSubmissionSerializer(serializers.ModelSerializer):
    submissionId = serializers.UUIDField(source="id", read_only=True)
    formId = serializers.UUIDField(source="form_id", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    contactId = serializers.UUIDField(source="contact_id", read_only=True)
    contactCreated = serializers.BooleanField(source="contact_created", read_only=True)
    sourceIp = serializers.CharField(source="source_ip", read_only=True, allow_null=True)
    userAgent = serializers.CharField(source="user_agent", read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = FormSubmission
        fields = ["submissionId", "formId", "version", "contactId", "contactCreated", "data", "consents",
                  "sourceIp", "userAgent", "createdAt"]  # fmt: skip
        read_only_fields = fields
