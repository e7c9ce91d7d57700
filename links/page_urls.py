from __future__ import annotations

from django.urls import path

from links import views

app_name = "link_pages"

urlpatterns = [
    path("", views.link_list_page, name="list"),
    path("<uuid:link_id>/", views.link_detail, name="detail"),
    path("<uuid:link_id>/toggle/", views.link_toggle, name="toggle"),
    path("<uuid:link_id>/qr.png", views.link_qr, {"kind": "png"}, name="qr-png"),
    path("<uuid:link_id>/qr.svg", views.link_qr, {"kind": "svg"}, name="qr-svg"),
    path("<uuid:link_id>/clicks.csv", views.link_clicks_csv, name="csv"),
]
