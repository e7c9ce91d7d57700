"""The operator pages (server-rendered, htmx navigation). The REST API lives under /api/."""

from __future__ import annotations

from django.urls import include, path, re_path

from wecare import views

urlpatterns = [
    path("", views.home, name="home"),
    path("agent/", include("automation.page_urls")),  # the AI suggestions' queue and decisions
    path("contacts/", include("contacts.page_urls")),
    path("dm/", include("messaging.page_urls")),
    path("bulk/", include("bulk.page_urls")),
    re_path(rf"^(?P<module>{'|'.join(views.COMING_SOON)})/$", views.coming_soon, name="coming-soon"),
]
