"""REST API for AI suggestions: /api/ai/suggestions/.

- ``GET /api/ai/suggestions/`` (Viewer and up): filters ``status``, ``contactId``, ``source``,
  ``createdAfter``, ``createdBefore``; newest first, pages of 50.
- ``GET /api/ai/suggestions/{id}/``: one suggestion.
- ``POST .../{id}/approve/`` (Operator, Admin) ``{"text"?}``: approve as drafted or with the edited
  text; the reply goes through message_send (the one gate, SEND_MODE). 200 with the suggestion;
  409 ``{"code": "NOT_PENDING"|"SUPERSEDED"|"EXPIRED"}``; 422 ``{"code": <gate code>}`` when the gate refuses.
- ``POST .../{id}/reject/`` ``{"reason"}``; ``POST .../{id}/feedback/`` ``{"rating", "comment"?}``.
"""

from __future__ import annotations

from django.http import Http404
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import RolePermission, permission_required
from automation import services
from automation.models import AISuggestion, SuggestionSource, SuggestionStatus
from automation.selectors import suggestion_list
from automation.serializers import AISuggestionSerializer, ApproveSerializer, FeedbackSerializer, RejectSerializer
from messaging.safety import SafetyRefusal

DECIDE = "automation.change_aisuggestion"
ERROR_STATUS = {"NOT_FOUND": 404, "NOT_PENDING": 409, "SUPERSEDED": 409, "EXPIRED": 409}


class SuggestionFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=SuggestionStatus.choices)
    source = filters.ChoiceFilter(choices=SuggestionSource.choices)
    contactId = filters.UUIDFilter(field_name="contact_id")
    createdAfter = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    createdBefore = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AISuggestion
        fields: list[str] = []


@extend_schema(summary="List AI suggestions, newest first")
class SuggestionListView(generics.ListAPIView):
    serializer_class = AISuggestionSerializer
    filterset_class = SuggestionFilter
    permission_classes = [RolePermission]

    def get_queryset(self):
        return suggestion_list()


@extend_schema(summary="One AI suggestion")
class SuggestionDetailView(generics.RetrieveAPIView):
    serializer_class = AISuggestionSerializer
    permission_classes = [RolePermission]
    lookup_url_kwarg = "suggestion_id"

    def get_queryset(self):
        return suggestion_list()


class _Decision(APIView):
    permission_classes = [permission_required(DECIDE)]
    input_serializer: type = ApproveSerializer

    def post(self, request, suggestion_id):
        form = self.input_serializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            suggestion = self.decide(request, suggestion_id, form.validated_data)
        except services.SuggestionError as exc:
            if exc.code == "NOT_FOUND":
                raise Http404(exc.message) from None
            return Response({"code": exc.code, "detail": exc.message}, status=ERROR_STATUS.get(exc.code, 400))
        except SafetyRefusal as refusal:
            return Response({"code": refusal.code, "detail": refusal.reason}, status=422)
        return Response(AISuggestionSerializer(suggestion).data)


_responses = {
    200: AISuggestionSerializer,
    409: OpenApiResponse(description="Not pending: decided, superseded or expired"),
    422: OpenApiResponse(description="Refused by the safety gate"),
}


@extend_schema(summary="Approve (optionally edited) and send through the gate", request=ApproveSerializer,
               responses=_responses)  # fmt: skip
class SuggestionApproveView(_Decision):
    input_serializer = ApproveSerializer

    def decide(self, request, suggestion_id, data):
        return services.suggestion_approve(suggestion_id=suggestion_id, user=request.user, text=data.get("text"))


@extend_schema(summary="Reject with a reason", request=RejectSerializer, responses=_responses)
class SuggestionRejectView(_Decision):
    input_serializer = RejectSerializer

    def decide(self, request, suggestion_id, data):
        return services.suggestion_reject(suggestion_id=suggestion_id, user=request.user, reason=data["reason"])


@extend_schema(summary="Rate a suggestion (useful / not useful) with an optional comment",
               request=FeedbackSerializer, responses=_responses)  # fmt: skip
class SuggestionFeedbackView(_Decision):
    input_serializer = FeedbackSerializer

    def decide(self, request, suggestion_id, data):
        return services.suggestion_feedback(
            suggestion_id=suggestion_id, user=request.user, rating=data["rating"], comment=data.get("comment", "")
        )
