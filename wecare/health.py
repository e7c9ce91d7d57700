"""Health for the load balancer and the orchestrator.

- ``/healthz/live`` (liveness): the process answers. No dependency is checked, so a database outage
  never makes the orchestrator restart healthy web containers.
- ``/healthz/ready`` (readiness; ``/healthz`` is the same): the database, the broker (SQS) and AWS (S3)
  are reachable; 503 names what is down, and the load balancer stops sending traffic meanwhile.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from wecare import aws

logger = logging.getLogger(__name__)


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    # The broker is SQS: the default task queue must exist and answer.
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("queue_name_prefix", "")
    aws.client("sqs").get_queue_url(QueueName=prefix + settings.QUEUE_DEFAULT)


def _aws() -> None:
    aws.client("s3").head_bucket(Bucket=settings.MEDIA_BUCKET)


CHECKS = {"database": _database, "broker": _broker, "aws": _aws}


@require_GET
def liveness(request):
    return JsonResponse({"status": "ok"})


@require_GET
def healthz(request):
    result = {}
    for name, check in CHECKS.items():
        try:
            check()
            result[name] = "ok"
        except Exception as exc:  # any failure means "down"; say which, log why
            logger.warning("healthz: %s is down: %s", name, exc)
            result[name] = "down"
    status = 200 if all(v == "ok" for v in result.values()) else 503
    return JsonResponse(result, status=status)
