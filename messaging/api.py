"""REST API for messages: /api/messages/.

- ``POST /api/messages/`` (Operator, Admin: messaging.send_message): JSON or multipart (with a
  ``media`` file). Answers **202** with the queued message (``messageId``); delivery follows on the
  outbound queue. A malformed request (wrong types, unknown channel, text and template together) is
  **400** with DRF's field errors. A request the safety gate refuses is **422** with
  ``{"code": "<GATE CODE>", "detail": "<reason>"}`` (codes: messaging.safety.RefusalCode). 503 with
  ``{"code": "MEDIA_STORE_UNAVAILABLE"}`` if the media bucket cannot take the file.
- ``GET /api/messages/`` (Viewer and up): filters ``contactId``, ``channel``, ``status``,
  ``direction``, ``createdAfter``, ``createdBefore`` (ISO date or date-time), ``dryRun``; pages of 50.
- ``GET /api/messages/{messageId}/``: one message. Expired messages are 404 / left out.
- ``GET /api/voice-calls/`` (Viewer and up): voice calls kept (90 days), newest first; filters
  ``contactId``, ``status``; pages of 50.
"""

from __future__ import annotations

import logging

from django.http import Http404
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from accounts.permissions import RolePermission, permission_required
from contacts.models import Channel
from messaging.models import Direction, Message, MessageStatus, VoiceCall, VoiceCallStatus
from messaging.selectors import message_get, message_list
from messaging.serializers import MessageSendSerializer, MessageSerializer, VoiceCallSerializer
from messaging.services import OutgoingMedia, message_send, send_request_build
from wecare.jsonsafe import JSONParser

logger = logging.getLogger(__name__)


class MessageFilter(filters.FilterSet):
    contactId = filters.UUIDFilter(field_name="contact_id")
    channel = filters.ChoiceFilter(choices=Channel.choices)
    status = filters.ChoiceFilter(choices=MessageStatus.choices)
    direction = filters.ChoiceFilter(choices=Direction.choices)
    createdAfter = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    createdBefore = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    dryRun = filters.BooleanFilter(field_name="dry_run")

    class Meta:
        model = Message
        fields: list[str] = []


@extend_schema_view(
    get=extend_schema(summary="List messages (not expired), newest first"),
    post=extend_schema(
        summary="Send a message through the safety gate",
        request=MessageSendSerializer,
        responses={
            202: MessageSerializer,
            400: OpenApiResponse(description="Malformed request"),
            422: OpenApiResponse(description='Refused by the safety gate: {"code", "detail"}'),
        },
    ),
)
class MessageListCreateView(generics.ListCreateAPIView):
    serializer_class = MessageSerializer
    filterset_class = MessageFilter
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        return message_list()

    def get_permissions(self):
        if self.request.method == "POST":
            return [permission_required("messaging.send_message")()]
        return [RolePermission()]

    def create(self, request, *args, **kwargs):
        form = MessageSendSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        upload = data.get("media")
        media = None
        if upload is not None:
            media = OutgoingMedia(
                content_type=upload.content_type or "",
                size=upload.size,
                filename=upload.name or "",
                data=upload,
            )
        send_request = send_request_build(
            contact_id=data["contactId"],
            channel=data["channel"],
            text=data["text"],
            media=media,
            media_type=data.get("mediaType", ""),
            template_name=data["templateName"],
            template_language=data["templateLanguage"],
            template_parameters=data["templateParameters"],
            template_header=data["templateHeader"],
            template_buttons=data["templateButtons"],
            subject=data["subject"],
            html=data["html"],
            origination_phone_number_id=data["originationPhoneNumberId"],
            options=data["options"],
        )
        # A refusal (422) or an unreachable media bucket (503) is a PlatformError: wecare.api renders it.
        message = message_send(send_request, requested_by=request.user)
        body = MessageSerializer(message, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/messages/{message.pk}/"})


@extend_schema(summary="One message")
class MessageDetailView(generics.RetrieveAPIView):
    serializer_class = MessageSerializer
    permission_classes = [RolePermission]

    def get_queryset(self):
        return message_list()

    def get_object(self):
        message = message_get(self.kwargs["message_id"])
        if message is None:
            raise Http404("No such message.")
        self.check_object_permissions(self.request, message)
        return message


class VoiceCallFilter(filters.FilterSet):
    contactId = filters.UUIDFilter(field_name="contact_id")
    status = filters.ChoiceFilter(choices=VoiceCallStatus.choices)

    class Meta:
        model = VoiceCall
        fields: list[str] = []


@extend_schema(summary="List voice calls (kept 90 days), newest first")
class VoiceCallListView(generics.ListAPIView):
    serializer_class = VoiceCallSerializer
    filterset_class = VoiceCallFilter
    permission_classes = [RolePermission]

    def get_queryset(self):
        return VoiceCall.objects.filter(expires_at__gt=timezone.now()).order_by("-created_at", "-id")
