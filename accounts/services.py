"""Audit trail and user management."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
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


# --- Sign-in ------------------------------------------------------------------------------------
class SignInRefused(Exception):
    """A sign-in that must not succeed, with a reason fit to show the person and to audit."""

    def __init__(self, reason: str, *, status: int = 403, email: str = "", user: User | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.email = email
        self.user = user


def client_ip(request) -> str:
    """The caller's address: REMOTE_ADDR, or behind TRUSTED_PROXY_HOPS proxies the address they saw."""
    if request is None:
        return ""
    hops = getattr(settings, "TRUSTED_PROXY_HOPS", 0)
    if hops:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        # Each trusted proxy appends the address it received from; the client's is `hops` from the end.
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "")


def signin_audit(
    *,
    request,
    outcome: str,
    method: str,
    user: User | None = None,
    username: str = "",
    reason: str = "",
    details: dict | None = None,
) -> AuditLog:
    """Record one sign-in attempt: who, when (the entry's timestamp), source IP, method and outcome."""
    if outcome not in ("success", "failure"):
        raise ValueError(f"outcome must be success or failure, not {outcome!r}")
    info = {
        "ip": client_ip(request),
        "method": method,
        "outcome": outcome,
        "username": username or (user.email if user else ""),
        "user_agent": (request.META.get("HTTP_USER_AGENT", "")[:200] if request is not None else ""),
        **({"reason": reason} if reason else {}),
        **(details or {}),
    }
    logger.log(  # every attempt and its result (requirement 14.1); the username is masked in the log
        logging.WARNING if outcome == "failure" else logging.INFO,
        "sign-in %s method=%s username=%s ip=%s reason=%s",
        "refused" if outcome == "failure" else "succeeded", method, info["username"], info["ip"], reason or "-",
        extra={"event": "signin", "outcome": outcome, "method": method},
    )  # fmt: skip
    if request is not None:
        # The auth signal handlers must not record the same attempt a second time.
        request.signin_audited = True
    return audit_record(
        user=user,
        action=f"login.{outcome}",
        resource_type="user",
        resource_id=(user.pk if user else "") or info["username"],
        details=info,
    )


def role_from_groups(groups: list[str]) -> str | None:
    """The highest of Viewer < Operator < Admin among the groups; None when there is none of them."""
    present = set(groups)
    for role in reversed(ROLES):  # highest first
        if role in present:
            return role
    return None


def user_sign_in_sync(*, subject: str, email: str, groups: list[str], email_verified: bool = True) -> User:
    """Find or create the person the identity provider vouches for, and set their role from their groups.

    The user is found by the provider's subject, else (first OIDC sign-in of an existing row) by email.
    The role is the highest of Viewer < Operator < Admin in ``groups``; groups removed at the provider
    are removed here, also when the sign-in is then refused. A person with none of the three, or a
    disabled account, is refused (SignInRefused).
    """
    user, role = _user_sync_identity(subject=subject, email=email, groups=groups, email_verified=email_verified)
    if role is None:
        raise SignInRefused(_no_role_reason(groups), email=user.email, user=user)
    if not user.is_active:
        raise SignInRefused("this account is disabled here", email=user.email, user=user)
    return user


@transaction.atomic
def _user_sync_identity(
    *, subject: str, email: str, groups: list[str], email_verified: bool
) -> tuple[User, str | None]:
    # Every refusal here comes before any write; the role change below is kept even when the
    # caller then refuses the sign-in (a group removed at the provider is removed here).
    if not subject:
        raise SignInRefused("the identity provider gave no subject (sub)", status=401)
    email = User.objects.normalize_email(email or "").strip().lower()
    role = role_from_groups(groups)

    user = User.objects.select_for_update().filter(oidc_subject=subject).first()
    if user is None and email:
        user = User.objects.select_for_update().filter(email__iexact=email).first()
        if user is not None and user.oidc_subject and user.oidc_subject != subject:
            raise SignInRefused(
                f"{email} is already linked to another identity at the provider", email=email, user=user
            )
    if user is None:
        if not email:
            raise SignInRefused("the identity provider gave no email address", status=401)
        if settings.OIDC_REQUIRE_VERIFIED_EMAIL and not email_verified:
            raise SignInRefused(f"the email address {email} is not verified at the identity provider", email=email)
        if role is None:
            # No row for someone who may not use the platform.
            raise SignInRefused(_no_role_reason(groups), email=email)
        user = User(username=email, email=email, oidc_subject=subject)
        user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
        audit_record(
            user=None, action="user.create", resource_type="user", resource_id=user.pk, details={"via": "oidc"}
        )
    else:
        changed = []
        if user.oidc_subject is None:
            # Linking an existing row by email: only on an address the provider has verified.
            if settings.OIDC_REQUIRE_VERIFIED_EMAIL and not email_verified:
                raise SignInRefused(
                    f"the email address {email} is not verified at the identity provider", email=email, user=user
                )
            user.oidc_subject = subject
            changed.append("oidc_subject")
        if email and email != user.email:
            if User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists():
                raise SignInRefused(f"{email} belongs to another user here", email=email, user=user)
            user.email = user.username = email
            changed += ["email", "username"]
        if changed:
            user.save(update_fields=changed)

    previous = role_from_groups(list(user.groups.values_list("name", flat=True)))
    user_set_role(user=user, role=role)
    if role != previous:
        audit_record(
            user=None,
            action="user.role_change",
            resource_type="user",
            resource_id=user.pk,
            details={"from": previous, "to": role, "groups": groups, "via": "oidc"},
        )
    return user, role


def _no_role_reason(groups: list[str]) -> str:
    shown = ", ".join(groups) if groups else "none"
    return f"no role: the account is in none of the groups {', '.join(ROLES)} (its groups: {shown})"


@transaction.atomic
def user_set_break_glass(*, user: User, enabled: bool, by: User | None) -> None:
    """Allow (or stop) a superuser's password sign-in where OIDC is the way in. Audited."""
    if enabled and not user.is_superuser:
        raise ValueError(f"{user.email} is not a superuser: break-glass sign-in is for superusers only.")
    if user.break_glass_enabled == enabled:
        return
    user.break_glass_enabled = enabled
    user.save(update_fields=["break_glass_enabled"])
    audit_record(
        user=by,
        action="user.break_glass_enable" if enabled else "user.break_glass_disable",
        resource_type="user",
        resource_id=user.pk,
        details={"email": user.email},
    )
    logger.warning("break-glass password sign-in %s for %s", "ENABLED" if enabled else "disabled", user.email)
