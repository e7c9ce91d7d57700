"""REST API for segments: /api/segments/ (CRUD) and their preview. Thin: audiences.services decide."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.permissions import RolePermission, permission_required
from audiences.models import Segment
from audiences.selectors import segment_preview
from audiences.services import segment_create, segment_delete, segment_update
from audiences.spec import spec_clean
from contacts.models import Channel
from messaging.models import MessageType
from wecare.jsonsafe import JSONParser

UUID_REGEX = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
MESSAGE_TYPES = {
    Channel.WHATSAPP: (MessageType.TEMPLATE, MessageType.TEXT),
    Channel.SMS: (MessageType.TEXT,),
    Channel.EMAIL: (MessageType.EMAIL,),
}


def _api_error(exc: DjangoValidationError) -> serializers.ValidationError:
    return serializers.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)


class SegmentSerializer(serializers.ModelSerializer):
    segmentId = serializers.UUIDField(source="id", read_only=True)
    spec = serializers.JSONField(help_text="The filter: see audiences/spec.py (tagsAny, attributes, consent, ...)")
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = Segment
        fields = ["segmentId", "name", "description", "spec", "createdAt", "updatedAt"]
        extra_kwargs = {"name": {"validators": []}}  # the service checks uniqueness (case-insensitive)

    def _actor(self):
        return getattr(self.context.get("request"), "user", None)

    def create(self, validated_data):
        try:
            return segment_create(actor=self._actor(), **validated_data)
        except DjangoValidationError as exc:
            raise _api_error(exc) from exc

    def update(self, instance, validated_data):
        data = {"name": instance.name, "description": instance.description, "spec": instance.spec, **validated_data}
        try:
            return segment_update(segment=instance, actor=self._actor(), **data)
        except DjangoValidationError as exc:
            raise _api_error(exc) from exc


class PreviewQuerySerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    messageType = serializers.ChoiceField(choices=MessageType.choices, required=False)

    def validate(self, attrs):
        allowed = MESSAGE_TYPES[Channel(attrs["channel"])]
        attrs.setdefault("messageType", allowed[0])
        if attrs["messageType"] not in allowed:
            raise serializers.ValidationError({"messageType": [f"By {attrs['channel']}: one of {', '.join(allowed)}."]})
        return attrs


class PreviewBodySerializer(PreviewQuerySerializer):
    spec = serializers.JSONField()


def _preview_response(spec: dict, params: dict) -> Response:
    preview = segment_preview(spec, channel=params["channel"], message_type=params["messageType"])
    return Response({"channel": params["channel"], "messageType": params["messageType"], **preview.as_dict()})


@extend_schema_view(
    list=extend_schema(summary="Saved segments, by name"),
    create=extend_schema(summary="Save a segment"),
    retrieve=extend_schema(summary="One segment"),
    partial_update=extend_schema(summary="Change a segment"),
    destroy=extend_schema(summary="Delete a segment"),
)
class SegmentViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = SegmentSerializer
    parser_classes = [JSONParser]
    permission_classes = [RolePermission]
    queryset = Segment.objects.all()
    lookup_url_kwarg = "segmentId"
    lookup_value_regex = UUID_REGEX
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def perform_destroy(self, instance):
        segment_delete(segment=instance, actor=self.request.user)

    @extend_schema(
        summary="The segment's members now: count, and whom the safety gate would skip and why",
        parameters=[
            OpenApiParameter("channel", str, enum=Channel.values, required=True),
            OpenApiParameter("messageType", str, enum=["template", "text", "email"]),
        ],
        responses={200: dict},
    )
    @action(detail=True, methods=["get"])
    def preview(self, request, segmentId=None):
        segment = self.get_object()
        params = PreviewQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        try:
            spec = spec_clean(segment.spec)
        except DjangoValidationError as exc:
            raise _api_error(exc) from exc
        return _preview_response(spec, params.validated_data)

    @extend_schema(
        summary="Preview an unsaved spec: count and the gate's skips by reason",
        request=PreviewBodySerializer,
        responses={200: dict},
    )
    # Previewing an unsaved spec changes nothing: reading segments is enough.
    @action(
        detail=False,
        methods=["post"],
        url_path="preview",
        permission_classes=[permission_required("audiences.view_segment")],
    )
    def preview_spec(self, request):
        body = PreviewBodySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            spec = spec_clean(body.validated_data["spec"])
        except DjangoValidationError as exc:
            raise _api_error(exc) from exc
        return _preview_response(spec, body.validated_data)
