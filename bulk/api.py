"""REST API for bulk jobs: /api/bulk/jobs/. Thin: serializers check types, bulk.services decides.

Operator and Admin create and act on jobs; Viewer reads them.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from accounts.permissions import RolePermission, permission_required
from bulk import services
from bulk.errors import BulkError
from bulk.models import BulkJob, BulkRecipient, RecipientStatus
from bulk.reports import report_urls
from bulk.serializers import (
    BulkConfirmSerializer,
    BulkJobCreateSerializer,
    BulkJobSerializer,
    BulkRecipientSerializer,
    BulkRetrySerializer,
)
from wecare.jsonsafe import JSONParser

UUID_REGEX = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

SEND = "messaging.send_message"
CHANGE = "bulk.change_bulkjob"


def error_response(exc: BulkError) -> Response:
    body = {"code": exc.code, "detail": exc.message, **exc.details}
    job = getattr(exc, "job", None)
    if job is not None:
        body["job"] = BulkJobSerializer(job, context={"live_counts": True}).data
    return Response(body, status=exc.http_status)


@extend_schema_view(
    list=extend_schema(summary="List bulk jobs, newest first (filter: status, channel)"),
    retrieve=extend_schema(summary="One bulk job with live progress"),
)
class BulkJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = BulkJobSerializer
    permission_classes = [RolePermission]
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    lookup_url_kwarg = "jobId"
    lookup_value_regex = UUID_REGEX
    filterset_fields = ["status", "channel"]

    def get_queryset(self):
        return BulkJob.objects.select_related("created_by").order_by("-created_at")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["live_counts"] = self.action != "list"
        return context

    def _job_response(self, job: BulkJob, code: int = status.HTTP_200_OK) -> Response:
        return Response(BulkJobSerializer(job, context={"live_counts": True}).data, status=code)

    @extend_schema(
        summary="Create a bulk job and return its pre-flight",
        request=BulkJobCreateSerializer,
        responses={
            201: BulkJobSerializer,
            400: OpenApiResponse(description="Bad recipients or message (code says which)"),
            422: OpenApiResponse(description="Rejected: would exceed the WhatsApp tier, or nobody would receive it"),
        },
    )
    def create(self, request):
        if not request.user.has_perm(SEND):
            self.permission_denied(request, message="Creating a bulk job needs permission to send messages.")
        serializer = BulkJobCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data.get("csv")
        message = services.BulkMessage(
            content=data["text"],
            template_name=data["templateName"],
            template_language=data["templateLanguage"],
            template_parameters=data.get("templateParameters"),
            subject=data["subject"],
            html=data["html"],
            origination_phone_number_id=data["originationPhoneNumberId"],
        )
        try:
            job = services.bulk_job_create(
                user=request.user,
                channel=data["channel"],
                message=message,
                contact_ids=data.get("contactIds"),
                contact_filter=data.get("filter"),
                segment_id=data.get("segmentId"),
                tag=data.get("tag"),
                csv_data=upload.read() if upload is not None else None,
                csv_name=upload.name if upload is not None else "",
            )
        except BulkError as exc:
            return error_response(exc)
        return self._job_response(job, status.HTTP_201_CREATED)

    def _act(self, request, jobId, service, **kwargs) -> Response:
        job = get_object_or_404(BulkJob, pk=jobId)
        try:
            job = service(job_id=job.pk, user=request.user, **kwargs)
        except BulkError as exc:
            return error_response(exc)
        return self._job_response(job)

    @extend_schema(
        summary="Confirm a job with the exact count the pre-flight will send to; queues it",
        request=BulkConfirmSerializer,
        responses={200: BulkJobSerializer, 400: OpenApiResponse(description="Count does not match")},
    )
    @action(detail=True, methods=["post"], permission_classes=[permission_required(CHANGE, SEND)])
    def confirm(self, request, jobId=None):
        serializer = BulkConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._act(request, jobId, services.bulk_job_confirm, count=serializer.validated_data["count"])

    @extend_schema(summary="Pause: no new sends start", request=None, responses=BulkJobSerializer)
    @action(detail=True, methods=["post"], permission_classes=[permission_required(CHANGE)])
    def pause(self, request, jobId=None):
        return self._act(request, jobId, services.bulk_job_pause)

    @extend_schema(summary="Resume where the job stopped", request=None, responses=BulkJobSerializer)
    @action(detail=True, methods=["post"], permission_classes=[permission_required(CHANGE, SEND)])
    def resume(self, request, jobId=None):
        return self._act(request, jobId, services.bulk_job_resume)

    @extend_schema(
        summary="Cancel: remaining recipients CANCELLED, partial report", request=None, responses=BulkJobSerializer
    )
    @action(detail=True, methods=["post"], permission_classes=[permission_required(CHANGE)])
    def cancel(self, request, jobId=None):
        return self._act(request, jobId, services.bulk_job_cancel)

    @extend_schema(
        summary="A new job for the FAILED recipients of a finished one (pre-flight and confirmation again)",
        request=BulkRetrySerializer,
        responses={201: BulkJobSerializer},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="retry-failed",
        permission_classes=[permission_required("bulk.add_bulkjob", SEND)],
    )
    def retry_failed(self, request, jobId=None):
        serializer = BulkRetrySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = get_object_or_404(BulkJob, pk=jobId)
        try:
            new_job = services.bulk_job_retry_failed(
                job_id=job.pk, user=request.user, include_unknown=serializer.validated_data["includeUnknownOutcome"]
            )
        except BulkError as exc:
            return error_response(exc)
        return self._job_response(new_job, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Pre-signed download URLs of the job's report (JSON and CSV, valid one hour)",
        responses={
            200: OpenApiResponse(description="{json, csv, expiresIn}"),
            409: OpenApiResponse(description="No report yet"),
        },
    )
    @action(detail=True, methods=["get"])
    def report(self, request, jobId=None):
        job = self.get_object()
        if not job.report_s3_key:
            return Response(
                {
                    "code": "REPORT_NOT_READY",
                    "detail": f"The report is written when the job finishes; it is {job.status}.",
                },
                status=status.HTTP_409_CONFLICT,
            )
        return Response(report_urls(job))

    @extend_schema(
        summary="The job's recipients: would-send or why not, then their outcome (filter: status, errorCode)",
        responses=BulkRecipientSerializer(many=True),
    )
    @action(
        detail=True,
        methods=["get"],
        permission_classes=[permission_required("bulk.view_bulkjob", "bulk.view_bulkrecipient")],
        filterset_fields=None,
    )
    def recipients(self, request, jobId=None):
        job = self.get_object()
        rows = BulkRecipient.objects.filter(job=job).order_by("sequence", "id")
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in RecipientStatus.values:
                return Response(
                    {"code": "INVALID_FILTER", "detail": f"status must be one of {', '.join(RecipientStatus.values)}."},
                    status=status.HTTP_400_BAD_REQUEST,
                )
            rows = rows.filter(status=wanted)
        if request.query_params.get("errorCode"):
            rows = rows.filter(error_code=request.query_params["errorCode"])
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(BulkRecipientSerializer(page, many=True).data)
