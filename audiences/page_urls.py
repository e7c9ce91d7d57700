from __future__ import annotations

from django.urls import path

from audiences import views

app_name = "audience_pages"

urlpatterns = [
    path("", views.segment_list, name="list"),
    path("new/", views.segment_new, name="create"),
    path("preview/", views.segment_preview_fragment, name="preview"),
    path("<uuid:segment_id>/", views.segment_detail, name="detail"),
    path("<uuid:segment_id>/delete/", views.segment_delete_page, name="delete"),
]
