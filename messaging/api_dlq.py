"""POST /api/dlq/{queue}/replay — Admins replay a dead-letter queue (inbound-dlq, outbound-dlq, bulk-dlq).

Body (optional): {"limit": 1..100}. Answers the replay's outcome: how many messages were received,
which original ids were replayed, failed again (returned to the DLQ) or parked for a human.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import permission_required
from accounts.services import audit_record
from messaging.dlq import MAX_REPLAY_BATCH, dlq_names, dlq_replay


class ReplayRequestSerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_REPLAY_BATCH, default=MAX_REPLAY_BATCH)


@extend_schema(
    request=ReplayRequestSerializer,
    responses=inline_serializer(
        "DLQReplayResult",
        {
            "queue": serializers.CharField(),
            "received": serializers.IntegerField(),
            "replayed": serializers.ListField(child=serializers.CharField()),
            "failed": serializers.ListField(child=serializers.CharField()),
            "parked": serializers.ListField(child=serializers.CharField()),
            "duplicates": serializers.IntegerField(),
            "busy": serializers.IntegerField(),
        },
    ),
)
class DLQReplayView(APIView):
    permission_classes = [permission_required("messaging.replay_dlqmessage")]

    def post(self, request, queue: str):
        if queue not in dlq_names():
            raise NotFound(f"Unknown dead-letter queue {queue!r}: use one of {', '.join(dlq_names())}.")
        params = ReplayRequestSerializer(data=request.data or {})
        params.is_valid(raise_exception=True)
        result = dlq_replay(queue, limit=params.validated_data["limit"])
        audit_record(
            user=request.user, action="dlq.replay", resource_type="dlq", resource_id=queue, details=result.as_dict()
        )
        return Response(result.as_dict(), status=status.HTTP_200_OK)
