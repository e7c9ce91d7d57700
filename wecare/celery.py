"""The Celery app. Its broker is SQS; queue names come from settings."""

from __future__ import annotations

import os

from celery import Celery

from wecare import sqs_broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wecare.settings")

sqs_broker.install()  # kombu 5.7's SQS channel would die on a failed receive (see the module)
app = Celery("wecare")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
