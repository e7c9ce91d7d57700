"""REST API for contacts: /api/contacts/. Thin: serializers validate, contacts.services decide."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.permissions import RolePermission, permission_required
from contacts.attributes import contacts_tag
from contacts.filters import ContactFilter
from contacts.models import AttributeDefinition, ConsentSource, Contact, Tag
from contacts.pagination import ContactPagination
from contacts.selectors import contact_consent_history
from contacts.serializers import (
    AttributeDefinitionSerializer,
    ConsentEventSerializer,
    ContactSerializer,
    ContactsTagSerializer,
    api_validation_error,
)
from contacts.services import contact_restore, contact_soft_delete
from wecare.jsonsafe import JSONParser

UUID_REGEX = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


@extend_schema_view(
    list=extend_schema(summary="List contacts (not deleted), newest first"),
    create=extend_schema(summary="Create a contact; opt-ins are false unless given"),
    retrieve=extend_schema(summary="One contact"),
    partial_update=extend_schema(summary="Change a contact; only the fields named change"),
    destroy=extend_schema(summary="Delete a contact (soft: an Admin can restore it)"),
)
class ContactViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ContactSerializer
    # JSON only: opt-ins must be JSON booleans, which form encodings cannot express.
    parser_classes = [JSONParser]
    permission_classes = [RolePermission]
    pagination_class = ContactPagination
    filterset_class = ContactFilter
    lookup_url_kwarg = "contactId"
    lookup_value_regex = UUID_REGEX
    # No PUT: replacing a whole contact would imply opt-in values nobody named.
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return Contact.objects.active().prefetch_related("tags")

    def perform_destroy(self, instance):
        try:
            contact_soft_delete(contact=instance, actor=self.request.user)
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc

    @extend_schema(
        summary="Restore a deleted contact (Admin only)",
        request=None,
        responses={200: ContactSerializer, 400: OpenApiResponse(description="Not deleted, or phone/email taken")},
    )
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[permission_required("contacts.restore_contact")],
        filterset_class=None,
    )
    def restore(self, request, contactId=None):
        contact = get_object_or_404(Contact.objects.all(), pk=contactId)
        try:
            contact_restore(contact=contact, actor=request.user)
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc
        return Response(ContactSerializer(contact, context=self.get_serializer_context()).data)

    @extend_schema(summary="The contact's consent history, newest first", responses=ConsentEventSerializer(many=True))
    @action(
        detail=True,
        methods=["get"],
        url_path="consent-history",
        permission_classes=[permission_required("contacts.view_contact", "contacts.view_consentevent")],
        serializer_class=ConsentEventSerializer,
        filterset_class=None,
    )
    def consent_history(self, request, contactId=None):
        contact = self.get_object()
        page = self.paginate_queryset(contact_consent_history(contact=contact))
        return self.get_paginated_response(ConsentEventSerializer(page, many=True).data)

    @extend_schema(
        summary="Add and/or remove tags on many contacts (up to 1000 at once)",
        request=ContactsTagSerializer,
        responses={200: OpenApiResponse(description='{"contacts": n, "added": rows, "removed": rows}')},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="tags",
        permission_classes=[permission_required("contacts.change_contact")],
        filterset_class=None,
        pagination_class=None,
    )
    def tags(self, request):
        body = ContactsTagSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            result = contacts_tag(
                contact_ids=body.validated_data["contactIds"],
                add=body.validated_data["add"],
                remove=body.validated_data["remove"],
                actor=request.user,
                source=ConsentSource.API,
            )
        except DjangoValidationError as exc:
            raise api_validation_error(exc) from exc
        return Response(result)


class TagSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tag
        fields = ["name", "created_at"]


@extend_schema_view(list=extend_schema(summary="Every tag, by name"))
class TagViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = TagSerializer
    permission_classes = [RolePermission]
    queryset = Tag.objects.all()
    pagination_class = None


@extend_schema_view(
    list=extend_schema(summary="The declared contact attributes"),
    create=extend_schema(summary="Declare an attribute (Admin)"),
)
class AttributeDefinitionViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = AttributeDefinitionSerializer
    permission_classes = [RolePermission]
    parser_classes = [JSONParser]
    queryset = AttributeDefinition.objects.all()
    pagination_class = None
