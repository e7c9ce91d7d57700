from __future__ import annotations

from django.apps import AppConfig


class WebformsConfig(AppConfig):
    """Consent-capture forms: built by staff, published at /f/<slug>, each submission kept as proof."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "webforms"
    verbose_name = "Forms"
