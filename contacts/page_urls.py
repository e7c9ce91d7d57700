from __future__ import annotations

from django.urls import path

from contacts import views

app_name = "contact_pages"

urlpatterns = [
    path("", views.contact_list, name="list"),
    path("new/", views.contact_create_page, name="create"),
    path("tags/", views.contact_tags_page, name="tags"),
    path("import/", views.contact_import_page, name="import"),
    path("import/<uuid:job_id>/", views.contact_import_job_page, name="import_job"),
    path("export/", views.contact_export_page, name="export"),
    path("<uuid:contact_id>/", views.contact_detail, name="detail"),
    path("<uuid:contact_id>/edit/", views.contact_edit_page, name="edit"),
    path("<uuid:contact_id>/delete/", views.contact_delete_page, name="delete"),
    path("<uuid:contact_id>/restore/", views.contact_restore_page, name="restore"),
    path(
        "<uuid:contact_id>/suppressions/<uuid:suppression_id>/lift/",
        views.contact_suppression_lift_page,
        name="suppression_lift",
    ),
]
