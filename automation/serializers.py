"""Shapes of the AI-suggestions API (camelCase, as the rest of the API)."""

from __future__ import annotations

from rest_framework import serializers

from automation.models import AISuggestion, FeedbackRating


class AISuggestionSerializer(serializers.ModelSerializer):
    suggestionId = serializers.UUIDField(source="id", read_only=True)
    inboundMessageId = serializers.UUIDField(source="inbound_message_id", read_only=True)
    contactId = serializers.UUIDField(source="contact_id", read_only=True)
    originationPhoneNumberId = serializers.CharField(source="origination_phone_number_id", read_only=True)
    knowledgeContext = serializers.JSONField(source="knowledge_context", read_only=True)
    editedText = serializers.CharField(source="edited_text", read_only=True)
    tokensUsed = serializers.IntegerField(source="tokens_used", read_only=True)
    guardrailTraces = serializers.JSONField(source="guardrail_traces", read_only=True)
    replyBy = serializers.DateTimeField(source="reply_by", read_only=True)
    decidedBy = serializers.SerializerMethodField()
    decidedAt = serializers.DateTimeField(source="decided_at", read_only=True)
    rejectReason = serializers.CharField(source="reject_reason", read_only=True)
    sentMessageId = serializers.UUIDField(source="sent_message_id", read_only=True)
    feedbackRating = serializers.CharField(source="feedback_rating", read_only=True)
    feedbackComment = serializers.CharField(source="feedback_comment", read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    expiresAt = serializers.DateTimeField(source="expires_at", read_only=True)

    class Meta:
        model = AISuggestion
        fields = [
            "suggestionId", "inboundMessageId", "contactId", "channel", "originationPhoneNumberId", "query",
            "knowledgeContext", "response", "editedText", "source", "score", "model", "tokensUsed", "flags",
            "guardrailTraces", "status", "error", "replyBy", "decidedBy", "decidedAt", "rejectReason",
            "sentMessageId", "feedbackRating", "feedbackComment", "createdAt", "expiresAt",
        ]  # fmt: skip
        read_only_fields = fields

    def get_decidedBy(self, obj) -> str | None:  # noqa: N802 - the API's field name
        return obj.decided_by.email if obj.decided_by else None


class ApproveSerializer(serializers.Serializer):
    text = serializers.CharField(required=False, allow_blank=False, max_length=10_000, trim_whitespace=True)


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000)


class FeedbackSerializer(serializers.Serializer):
    rating = serializers.ChoiceField(choices=FeedbackRating.choices)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=1000, default="")
