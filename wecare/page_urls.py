"""The operator pages (server-rendered, htmx navigation). The REST API lives under /api/."""

from __future__ import annotations

from django.urls import include, path, re_path

from wecare import operations_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("agent/", include("automation.page_urls")),  # the AI suggestions' queue and decisions
    path("operations/", operations_views.operations_page, name="operations"),
    path("operations/live/", operations_views.operations_live, name="operations-live"),
    path("operations/replay/<str:queue>/", operations_views.operations_replay, name="operations-replay"),
    path("contacts/", include("contacts.page_urls")),
    path("dm/", include("messaging.page_urls")),
    path("bulk/", include("bulk.page_urls")),
    path("forms/", include("webforms.page_urls")),
    path("audiences/", include("audiences.page_urls")),  # saved segments, their builder and preview
    path("link/", include("links.page_urls")),
    re_path(rf"^(?P<module>{'|'.join(views.COMING_SOON)})/$", views.coming_soon, name="coming-soon"),
]
