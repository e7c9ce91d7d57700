"""The Celery app. Its broker is SQS; queue names come from settings."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wecare.settings")

app = Celery("wecare")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
