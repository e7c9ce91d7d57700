"""REST API for forms: /api/forms/ and /api/forms/{formId}/submissions/. Thin: webforms.services decide."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from accounts.permissions import RolePermission, permission_required
from contacts.serializers import api_validation_error
from webforms.models import Form
from webforms.selectors import form_list, form_submissions
from webforms.serializers import FormSerializer, FormSubmissionSerializer
from webforms.services import CONTENT_FIELDS, form_create, form_update
from wecare.jsonsafe import JSONParser

SETTINGS_FIELDS = ("name", "slug", "is_published", "email_double_opt_in")


class FormPagination(PageNumberPagination):
    page_size = 50
    max_page_size = 500
    page_size_query_param = "pageSize"


def _changes(validated: dict) -> dict:
    changes = {key: value for key, value in validated.items() if key in CONTENT_FIELDS or key in SETTINGS_FIELDS}
    if "embed_origin_list" in validated:
        changes["embed_origins"] = "\n".join(validated["embed_origin_list"])
    return changes


@extend_schema_view(
    list=extend_schema(summary="List forms with their current version"),
    create=extend_schema(summary="Create a form (version 1)"),
    retrieve=extend_schema(summary="One form with its current version"),
    partial_update=extend_schema(summary="Change a form; changing what visitors read makes a new version"),
)
class FormViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = FormSerializer
    parser_classes = [JSONParser]
    permission_classes = [RolePermission]
    pagination_class = FormPagination
    lookup_url_kwarg = "formId"
    queryset = Form.objects.none()  # for the permission class's model
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return form_list().order_by("-created_at")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = _changes(serializer.validated_data)
        content = {field: changes.pop(field) for field in CONTENT_FIELDS if field in changes}
        try:
            form = form_create(content=content, **changes, actor=request.user)
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc
        return Response(FormSerializer(form).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        form = self.get_object()
        serializer = self.get_serializer(form, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            form = form_update(form=form, changes=_changes(serializer.validated_data), actor=request.user)
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc
        return Response(FormSerializer(form).data)

    @extend_schema(summary="The form's submissions, newest first", responses=FormSubmissionSerializer(many=True))
    @action(
        detail=True,
        methods=["get"],
        url_path="submissions",
        permission_classes=[permission_required("webforms.view_formsubmission")],
    )
    def submissions(self, request, formId=None):  # noqa: N803 - the URL's name
        form = self.get_object()
        page = self.paginate_queryset(form_submissions(form=form))
        return self.get_paginated_response(FormSubmissionSerializer(page, many=True).data)
