"""JSON for contacts, in the seed platform's names (contactId, optInWhatsApp, createdAt…).

Serializers check types and hand over to contacts.services; the rules live there.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from rest_framework import serializers
from rest_framework.settings import api_settings

from contacts.attributes import contact_attributes_clean, contact_set_attributes, contact_set_tags, tag_names_clean
from contacts.models import AttributeDefinition, ConsentEvent, ConsentSource, Contact
from contacts.services import OPT_IN_FIELDS, contact_create, contact_update

# Model field (as the services name it) → JSON field.
JSON_NAMES = {
    "id": "contactId",
    "name": "name",
    "phone": "phone",
    "email": "email",
    "opt_in_whatsapp": "optInWhatsApp",
    "opt_in_sms": "optInSms",
    "opt_in_email": "optInEmail",
    "opt_in_voice": "optInVoice",
    "opt_in_rcs": "optInRcs",
    "opt_ins": api_settings.NON_FIELD_ERRORS_KEY,
    NON_FIELD_ERRORS: api_settings.NON_FIELD_ERRORS_KEY,
}


def api_validation_error(exc: DjangoValidationError) -> serializers.ValidationError:
    """A services ValidationError as DRF's, keyed by the JSON field names."""
    if not hasattr(exc, "error_dict"):
        return serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: exc.messages})
    detail: dict[str, list[str]] = {}
    for field, messages in exc.message_dict.items():
        detail.setdefault(JSON_NAMES.get(field, field), []).extend(messages)
    return serializers.ValidationError(detail)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false, nothing else: "yes", 1, "true" and null are refused.

    DRF's BooleanField accepts "yes", 1 and "on"; consent must never be given by such a guess.
    """

    default_error_messages = {
        "invalid": "Must be a JSON boolean, true or false (not {input!r}).",
        "null": "Must be a JSON boolean, true or false (not null).",
    }

    def to_internal_value(self, data):
        if type(data) is bool:
            return data
        self.fail("invalid", input=data)


class TagNamesField(serializers.ListField):
    """Tag names in, the contact's tag names (sorted) out."""

    def to_representation(self, data):
        return sorted(tag.name for tag in data.all())


class ContactSerializer(serializers.ModelSerializer):
    contactId = serializers.UUIDField(source="id", read_only=True)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200, trim_whitespace=True)
    phone = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=40,
        help_text="E.164 in answers. National input (e.g. 98765 43210) is read in the default region.",
    )
    email = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=254)
    optInWhatsApp = StrictBooleanField(source="opt_in_whatsapp", required=False)
    optInSms = StrictBooleanField(source="opt_in_sms", required=False)
    optInEmail = StrictBooleanField(source="opt_in_email", required=False)
    optInVoice = StrictBooleanField(source="opt_in_voice", required=False)
    optInRcs = StrictBooleanField(source="opt_in_rcs", required=False)
    lastInboundMessageAt = serializers.DateTimeField(source="last_inbound_message_at", read_only=True, allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)
    deletedAt = serializers.DateTimeField(source="deleted_at", read_only=True, allow_null=True)
    tags = TagNamesField(
        child=serializers.CharField(max_length=64),
        required=False,
        max_length=50,
        help_text="Tag names. Writing sets exactly these (new names become tags).",
    )
    attributes = serializers.DictField(
        required=False,
        help_text="Declared attributes, name → value. Writing changes only the names given; null removes one.",
    )

    class Meta:
        model = Contact
        fields = [
            "contactId",
            "name",
            "phone",
            "email",
            "optInWhatsApp",
            "optInSms",
            "optInEmail",
            "tags",
            "attributes",
            "optInVoice",
            "optInRcs",
            "lastInboundMessageAt",
            "createdAt",
            "updatedAt",
            "deletedAt",
        ]

    def to_internal_value(self, data):
        # An unknown key is most likely a misspelt field ("optinSms"): refusing it beats ignoring
        # a consent change the client thinks it made.
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {key: [f"Unknown field: use one of {', '.join(self.fields)}."] for key in unknown}
                )
        return super().to_internal_value(data)

    def validate_tags(self, value):
        try:
            return tag_names_clean(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc

    def validate_attributes(self, value):
        try:
            contact_attributes_clean(value)  # checked again by the service; this reports it with the rest
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        return value

    def _actor(self):
        request = self.context.get("request")
        return getattr(request, "user", None)

    def _tags_and_attributes(self, contact: Contact, tags, attributes) -> None:
        if tags is not None:
            contact_set_tags(contact=contact, names=tags, actor=self._actor(), source=ConsentSource.API)
        if attributes is not None:
            contact_set_attributes(contact=contact, values=attributes, actor=self._actor(), source=ConsentSource.API)

    def create(self, validated_data):
        tags, attributes = validated_data.pop("tags", None), validated_data.pop("attributes", None)
        opt_ins = {OPT_IN_FIELDS[field]: validated_data[field] for field in OPT_IN_FIELDS if field in validated_data}
        try:
            with transaction.atomic():
                contact = contact_create(
                    name=validated_data.get("name", ""),
                    phone=validated_data.get("phone"),
                    email=validated_data.get("email"),
                    opt_ins=opt_ins,
                    actor=self._actor(),
                    source=ConsentSource.API,
                )
                self._tags_and_attributes(contact, tags, attributes)
                return contact
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc

    def update(self, instance, validated_data):
        tags, attributes = validated_data.pop("tags", None), validated_data.pop("attributes", None)
        try:
            with transaction.atomic():
                contact_update(contact=instance, data=validated_data, actor=self._actor(), source=ConsentSource.API)
                self._tags_and_attributes(instance, tags, attributes)
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc
        # The prefetched tags (if any) are from before the change.
        if hasattr(instance, "_prefetched_objects_cache"):
            instance._prefetched_objects_cache.pop("tags", None)
        return instance


class ConsentEventSerializer(serializers.ModelSerializer):
    eventId = serializers.UUIDField(source="id", read_only=True)
    contactId = serializers.UUIDField(source="contact_id", read_only=True)
    channel = serializers.CharField(read_only=True)
    oldValue = serializers.BooleanField(source="old_value", read_only=True, allow_null=True)
    newValue = serializers.BooleanField(source="new_value", read_only=True)
    changedBy = serializers.CharField(source="actor", read_only=True, help_text="Email of who changed it, or system.")
    source = serializers.CharField(read_only=True)
    changedAt = serializers.DateTimeField(source="changed_at", read_only=True)
    proof = serializers.JSONField(
        read_only=True, help_text="Evidence kept by the source (a form: version, wording, …)."
    )

    class Meta:
        model = ConsentEvent
        fields = [
            "eventId",
            "contactId",
            "channel",
            "oldValue",
            "newValue",
            "changedBy",
            "source",
            "changedAt",
            "proof",
        ]


class ContactsTagSerializer(serializers.Serializer):
    contactIds = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=1000)
    add = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list)
    remove = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list)

    def validate(self, attrs):
        if not attrs["add"] and not attrs["remove"]:
            raise serializers.ValidationError({"add": ["Name the tags to add and/or remove."]})
        return attrs


class AttributeDefinitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = AttributeDefinition
        fields = ["name", "label", "type", "choices", "created_at"]
        read_only_fields = ["created_at"]

    def validate(self, attrs):
        definition = AttributeDefinition(**attrs)
        try:
            definition.full_clean(exclude=["name"] if "name" not in attrs else None, validate_unique=False)
            definition.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs
