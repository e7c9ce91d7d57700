"""Saved segments: a named filter over contacts, evaluated whenever it is used (never a stored list)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Segment(models.Model):
    """A saved filter (audiences.spec describes ``spec``). Who is in it is worked out when a preview
    or a bulk job asks, so a contact tagged or opted in since is included."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name="segment id")
    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True, max_length=2000)
    spec = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
