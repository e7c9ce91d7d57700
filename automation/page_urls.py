from __future__ import annotations

from django.urls import path

from automation import views

urlpatterns = [
    path("", views.agent, name="agent"),
    path("switch/", views.switch, name="agent-switch"),
    path("dm/<uuid:contact_id>/", views.dm_panel, name="agent-dm-panel"),
    path("<uuid:suggestion_id>/approve/", views.approve, name="agent-approve"),
    path("<uuid:suggestion_id>/reject/", views.reject, name="agent-reject"),
    path("<uuid:suggestion_id>/feedback/", views.feedback, name="agent-feedback"),
]
