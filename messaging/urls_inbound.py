"""Routes of the inbound side: the SNS webhook, the dead-letter replay API and the public unsubscribe page."""

from __future__ import annotations

from django.urls import path

from messaging.api_dlq import DLQReplayView
from messaging.feedback.views import unsubscribe, unsubscribe_confirm
from messaging.webhooks import sns_webhook

urlpatterns = [
    path("webhooks/sns/", sns_webhook, name="sns-webhook"),
    path("api/dlq/<str:queue>/replay", DLQReplayView.as_view(), name="dlq-replay"),
    # Public, no login: the signed link is the authority (messaging.feedback.views).
    path("unsubscribe/<str:token>/", unsubscribe, name="unsubscribe"),
    path("unsubscribe/<str:token>/confirm", unsubscribe_confirm, name="unsubscribe-confirm"),
]
