"""Routes of the messages API, included under /api/ (see messaging.api)."""

from __future__ import annotations

from django.urls import path

from messaging.api import MessageDetailView, MessageListCreateView, VoiceCallListView

urlpatterns = [
    path("messages/", MessageListCreateView.as_view(), name="message-list"),
    path("messages/<uuid:message_id>/", MessageDetailView.as_view(), name="message-detail"),
    path("voice-calls/", VoiceCallListView.as_view(), name="voice-call-list"),
]
