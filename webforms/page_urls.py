from __future__ import annotations

from django.urls import path

from webforms import views

app_name = "webforms_pages"

urlpatterns = [
    path("", views.form_list_page, name="list"),
    path("new/", views.form_create_page, name="create"),
    path("<uuid:form_id>/", views.form_detail_page, name="detail"),
    path("<uuid:form_id>/edit/", views.form_edit_page, name="edit"),
    path("<uuid:form_id>/submissions/", views.form_submissions_page, name="submissions"),
    path("<uuid:form_id>/submissions.csv", views.form_submissions_csv, name="submissions_csv"),
]
