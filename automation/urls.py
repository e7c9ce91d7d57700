"""Routes of the AI-suggestions API, included under /api/ (see automation.api)."""

from __future__ import annotations

from django.urls import path

from automation import api

urlpatterns = [
    path("ai/suggestions/", api.SuggestionListView.as_view(), name="ai-suggestion-list"),
    path("ai/suggestions/<uuid:suggestion_id>/", api.SuggestionDetailView.as_view(), name="ai-suggestion-detail"),
    path("ai/suggestions/<uuid:suggestion_id>/approve/", api.SuggestionApproveView.as_view(), name="ai-approve"),
    path("ai/suggestions/<uuid:suggestion_id>/reject/", api.SuggestionRejectView.as_view(), name="ai-reject"),
    path("ai/suggestions/<uuid:suggestion_id>/feedback/", api.SuggestionFeedbackView.as_view(), name="ai-feedback"),
]
