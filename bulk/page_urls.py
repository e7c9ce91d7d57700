from __future__ import annotations

from django.urls import path

from bulk import views

app_name = "bulk_pages"

urlpatterns = [
    path("", views.job_list, name="list"),
    path("new/", views.job_new, name="new"),
    path("new/preview/", views.job_preview, name="preview"),
    path("<uuid:job_id>/", views.job_detail, name="detail"),
    path("<uuid:job_id>/confirm/", views.job_confirm, name="confirm"),
    path("<uuid:job_id>/schedule/", views.job_schedule, name="schedule"),
    path("<uuid:job_id>/pause/", views.job_pause, name="pause"),
    path("<uuid:job_id>/resume/", views.job_resume, name="resume"),
    path("<uuid:job_id>/cancel/", views.job_cancel, name="cancel"),
    path("<uuid:job_id>/funnel/", views.job_funnel_page, name="funnel"),
    path("<uuid:job_id>/funnel.csv", views.job_funnel_csv, name="funnel_csv"),
    path("<uuid:job_id>/report/", views.job_report, name="report"),
]
