"""Audit trail and user management."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction

from accounts.models import AuditLog, User
from accounts.roles import ROLES

logger = logging.getLogger("wecare.audit")


def _actor(user) -> tuple[User | None, str]:
    if user is None or not getattr(user, "is_authenticated", False):
        return None, "anonymous"
    return user, user.email or user.get_username()


def audit_record(
    *,
    user,
    action: str,
    resource_type: str = "",
    resource_id: Any = "",
    details: dict | None = None,
) -> AuditLog:
    """Write one audit entry and log it."""
    db_user, actor = _actor(user)
    entry = AuditLog.objects.create(
        user=db_user,
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id or ""),
        details=details or {},
    )
    logger.info(
        "audit action=%s actor=%s resource=%s:%s details=%s",
        action,
        actor,
        resource_type,
        resource_id,
        details or {},
    )
    return entry


def audit_forbidden(*, user, resource_type: str, resource_id: Any, reason: str, details: dict) -> AuditLog:
    logger.warning("403 refused actor=%s resource=%s:%s reason=%s", _actor(user)[1], resource_type, resource_id, reason)
    return audit_record(
        user=user,
        action="forbidden",
        resource_type=resource_type,
        resource_id=resource_id,
        details={"reason": reason, **details},
    )


@transaction.atomic
def user_set_role(*, user: User, role: str | None) -> None:
    """Put the user in exactly one role group (or none); staff so the admin is open to them."""
    if role is not None and role not in ROLES:
        raise ValueError(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")
    current = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    if current == ({role} if role else set()):
        return
    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    if role:
        user.groups.add(Group.objects.get(name=role))
    user.is_staff = role is not None or user.is_superuser
    user.save(update_fields=["is_staff"])


@transaction.atomic
def user_create(*, email: str, role: str, password: str | None = None) -> User:
    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValueError(f"A user with email {email} already exists.")
    user = User(username=email, email=email)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    user_set_role(user=user, role=role)
    audit_record(user=None, action="user.create", resource_type="user", resource_id=user.pk, details={"role": role})
    return user
