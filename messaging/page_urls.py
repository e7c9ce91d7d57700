from __future__ import annotations

from django.urls import path

from messaging import views

app_name = "dm"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("segments/", views.sms_segments, name="segments"),
    path("<uuid:contact_id>/", views.conversation, name="conversation"),
    path("<uuid:contact_id>/thread/", views.thread, name="thread"),
    path("<uuid:contact_id>/send/", views.send, name="send"),
]
