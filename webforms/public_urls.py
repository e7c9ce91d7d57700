"""Public (no sign-in) addresses of forms, mounted at /f/."""

from __future__ import annotations

from django.urls import path

from webforms import public_views

app_name = "webforms_public"

urlpatterns = [
    path("confirm/<str:token>/", public_views.email_confirm, name="confirm"),
    path("<slug:slug>/", public_views.form_page, name="form"),
    path("<slug:slug>/thanks/<str:token>/", public_views.form_thanks, name="thanks"),
]
