"""Tracked short links: a ShortLink (/l/<slug>), its personal copies in messages (/l/<slug>/<token>), clicks."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


class DeviceClass(models.TextChoices):
    MOBILE = "mobile", "Mobile"
    TABLET = "tablet", "Tablet"
    DESKTOP = "desktop", "Desktop"
    OTHER = "other", "Other"


class ShortLink(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name="link id")
    slug = models.SlugField(max_length=64, unique=True)
    destination = models.URLField(max_length=2048)
    title = models.CharField(max_length=200, blank=True)
    utm_source = models.CharField(max_length=100, blank=True)
    utm_medium = models.CharField(max_length=100, blank=True)
    utm_campaign = models.CharField(max_length=100, blank=True)
    utm_term = models.CharField(max_length=100, blank=True)
    utm_content = models.CharField(max_length=100, blank=True)
    enabled = models.BooleanField(default=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "short link"

    def __str__(self) -> str:
        return f"/l/{self.slug}"

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())


class PersonalLink(models.Model):
    """One recipient's copy of a short link in one message: its clicks are theirs (and the bulk job's)."""

    token = models.CharField(max_length=32, unique=True)
    link = models.ForeignKey(ShortLink, on_delete=models.CASCADE, related_name="personal_links")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="+")
    # Messages are purged after 30 days; the attribution to the contact and the job stays.
    message = models.ForeignKey("messaging.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    bulk_job = models.ForeignKey("bulk.BulkJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "personal link"

    def __str__(self) -> str:
        return f"/l/{self.link.slug}/{self.token}"


class Click(models.Model):
    """A person following a link. Link-preview fetchers (unfurlers, crawlers) are never recorded."""

    link = models.ForeignKey(ShortLink, on_delete=models.CASCADE, related_name="clicks")
    personal = models.ForeignKey(PersonalLink, null=True, blank=True, on_delete=models.SET_NULL, related_name="clicks")
    contact = models.ForeignKey("contacts.Contact", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    bulk_job = models.ForeignKey("bulk.BulkJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    clicked_at = models.DateTimeField(default=timezone.now)
    referrer_host = models.CharField(max_length=255, blank=True)
    device = models.CharField(max_length=16, choices=DeviceClass.choices, default=DeviceClass.OTHER)

    class Meta:
        ordering = ["-clicked_at"]
        indexes = [
            models.Index(fields=["link", "clicked_at"], name="click_link_time"),
            models.Index(fields=["bulk_job", "contact"], name="click_job_contact"),
            models.Index(fields=["contact", "-clicked_at"], name="click_contact_recent"),
        ]

    def __str__(self) -> str:
        return f"click on {self.link_id} at {self.clicked_at:%Y-%m-%d %H:%M:%S}"
