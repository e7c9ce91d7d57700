"""Routes of the inbound side: the SNS webhook and the dead-letter replay API."""

from __future__ import annotations

from django.urls import path

from messaging.api_dlq import DLQReplayView
from messaging.webhooks import sns_webhook

urlpatterns = [
    path("webhooks/sns/", sns_webhook, name="sns-webhook"),
    path("api/dlq/<str:queue>/replay", DLQReplayView.as_view(), name="dlq-replay"),
]
