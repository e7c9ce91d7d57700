"""REST: /api/links/ (list, create), /api/links/{id}/ (read, change: destination, UTM, expiry, enabled),
/api/links/{id}/stats/. Viewers read; Operators create and change (403, audited, otherwise)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.permissions import RolePermission
from links.models import UTM_FIELDS
from links.selectors import link_clicks_per_day, link_list, link_stats
from links.serializers import ShortLinkSerializer
from links.services import link_create, link_update


def _drf(exc: ValidationError) -> serializers.ValidationError:
    return serializers.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)


class ShortLinkViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ShortLinkSerializer
    permission_classes = [RolePermission]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return link_list()

    def perform_create(self, serializer):
        data = serializer.validated_data
        try:
            serializer.instance = link_create(
                user=self.request.user,
                destination=data["destination"],
                slug=data.get("slug", ""),
                title=data.get("title", ""),
                utm={name: data[name] for name in UTM_FIELDS if name in data},
                expires_at=data.get("expires_at"),
                enabled=data.get("enabled", True),
            )
        except ValidationError as exc:
            raise _drf(exc) from None

    def perform_update(self, serializer):
        data = serializer.validated_data
        if "slug" in data and data["slug"] != serializer.instance.slug:
            raise serializers.ValidationError({"slug": "A slug cannot change: printed QR codes point at it."})
        try:
            serializer.instance = link_update(
                link=serializer.instance,
                user=self.request.user,
                destination=data.get("destination"),
                title=data.get("title"),
                utm={name: data[name] for name in UTM_FIELDS if name in data} or None,
                expires_at=data.get("expires_at", False),
                enabled=data.get("enabled"),
            )
        except ValidationError as exc:
            raise _drf(exc) from None

    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        link = self.get_object()
        stats = link_stats(link)
        return Response(
            {
                "clicks": stats.clicks,
                "people": stats.people,
                "attributed": stats.attributed,
                "byDevice": stats.by_device,
                "perDay": [{"day": day.isoformat(), "clicks": n} for day, n in link_clicks_per_day(link)],
            }
        )
