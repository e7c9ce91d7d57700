from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from accounts.roles import ROLES


class User(AbstractUser):
    """A person who signs in. The email is the username; the role is the highest role group."""

    email = models.EmailField(unique=True)
    # The identity provider's stable id for this person (the ID token's ``sub``). Bound at the first
    # OIDC sign-in; from then on the user is found by it, so a changed email cannot take over a row.
    oidc_subject = models.CharField(max_length=255, unique=True, null=True, blank=True, editable=False)
    # The user-pool user name (``cognito:username``), what Cognito's admin API looks people up by when
    # the role is re-checked between sign-ins (accounts.tasks.roles_recheck).
    oidc_username = models.CharField(max_length=255, blank=True, default="", editable=False)
    roles_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Where OIDC is the way in, the password form still admits a superuser for whom an Admin turned
    # this on: the way back in when the identity provider is down.
    break_glass_enabled = models.BooleanField(
        "break-glass password sign-in",
        default=False,
        help_text="Superusers only: may sign in with a password even where Cognito sign-in is the way in.",
    )

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email or self.username

    @property
    def role(self) -> str | None:
        if self.is_superuser:
            return "Admin"
        names = set(self.groups.values_list("name", flat=True))
        for role in reversed(ROLES):  # highest first
            if role in names:
                return role
        return None

    @property
    def created_at(self):
        return self.date_joined

    @property
    def last_login_at(self):
        return self.last_login


def _audit_expiry():
    return timezone.now() + timedelta(days=settings.AUDIT_RETENTION_DAYS)


class AuditLog(models.Model):
    """An append-only record of who did what to which resource. Never edited, purged on expiry."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name="log id")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text too, so the entry still says who after the user row is gone.
    actor = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    resource_type = models.CharField(max_length=64, blank=True)
    resource_id = models.CharField(max_length=128, blank=True, db_index=True)
    timestamp = models.DateTimeField(default=timezone.now, db_index=True)
    details = models.JSONField(default=dict, blank=True)
    expires_at = models.DateTimeField(default=_audit_expiry, db_index=True)

    class Meta:
        ordering = ["-timestamp"]
        indexes = [models.Index(fields=["resource_type", "resource_id"])]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.actor or '-'} {self.action} {self.resource_type}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Audit entries are immutable.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit entries are deleted only by the retention purge.")
