"""Audit trail and user management."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import AuditLog, User
from accounts.roles import ROLES

logger = logging.getLogger("wecare.audit")


def _actor(user) -> tuple[User | None, str]:
    if user is None or not getattr(user, "is_authenticated", False):
        return None, "anonymous"
    return user, user.email or user.get_username()


def audit_entry(
    *,
    user,
    action: str,
    resource_type: str = "",
    resource_id: Any = "",
    details: dict | None = None,
) -> AuditLog:
    """One audit entry, not yet written: for a caller that writes it in a statement of its own (the
    one-to-one send writes message and entry together); log it with `audit_logged` once written."""
    db_user, actor = _actor(user)
    return AuditLog(
        user=db_user,
        actor=actor[:254],
        action=action[:64],
        resource_type=str(resource_type or "")[:64],
        resource_id=str(resource_id or "")[:128],
        details=details or {},
    )


def audit_logged(entry: AuditLog) -> None:
    """Log a written audit entry."""
    logger.info(
        "audit action=%s actor=%s resource=%s:%s details=%s",
        entry.action,
        entry.actor,
        entry.resource_type,
        entry.resource_id,
        entry.details,
    )


def audit_record(
    *,
    user,
    action: str,
    resource_type: str = "",
    resource_id: Any = "",
    details: dict | None = None,
) -> AuditLog:
    """Write one audit entry and log it."""
    entry = audit_entry(user=user, action=action, resource_type=resource_type, resource_id=resource_id, details=details)
    entry.save(force_insert=True)
    audit_logged(entry)
    return entry


# A refusal's audit entry is bounded: an anonymous caller chooses the path, headers and body.
AUDIT_TEXT_MAX = 300


def _bounded(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= AUDIT_TEXT_MAX else value[:AUDIT_TEXT_MAX] + "…"
    if isinstance(value, int | float | bool) or value is None:
        return value
    return _bounded(str(value))


def audit_forbidden(*, user, resource_type: str, resource_id: Any, reason: str, details: dict) -> AuditLog | None:
    """Record a 403. Never raises: an audit that cannot be written must not turn a 403 into a 500."""
    bounded = {str(k)[:64]: _bounded(v) for k, v in list(details.items())[:20]}
    try:
        logger.warning(
            "403 refused actor=%s resource=%s:%s reason=%s",
            _actor(user)[1],
            _bounded(resource_type),
            _bounded(resource_id),
            _bounded(reason),
        )
        with transaction.atomic():  # a savepoint: a failed insert leaves the request's transaction usable
            return audit_record(
                user=user,
                action="forbidden",
                resource_type=_bounded(resource_type),
                resource_id=_bounded(resource_id),
                details={"reason": _bounded(reason), **bounded},
            )
    except Exception:
        logger.exception("the audit entry of a 403 could not be written")
        return None


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
        # The same rules as every password form (AUTH_PASSWORD_VALIDATORS): too short, too common,
        # all digits or too like the email is refused with the validators' own words.
        validate_password(password, user=user)
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


def user_sign_in_sync(
    *, subject: str, email: str, groups: list[str], email_verified: bool = True, username: str = ""
) -> User:
    """Find or create the person the identity provider vouches for, and set their role from their groups.

    The user is found by the provider's subject, else (first OIDC sign-in of an existing row) by email.
    The role is the highest of Viewer < Operator < Admin in ``groups``; groups removed at the provider
    are removed here, also when the sign-in is then refused. A person with none of the three, or a
    disabled account, is refused (SignInRefused).
    """
    user, role = _user_sync_identity(
        subject=subject, email=email, groups=groups, email_verified=email_verified, username=username
    )
    if role is None:
        raise SignInRefused(_no_role_reason(groups), email=user.email, user=user)
    if not user.is_active:
        raise SignInRefused("this account is disabled here", email=user.email, user=user)
    return user


@transaction.atomic
def _user_sync_identity(
    *, subject: str, email: str, groups: list[str], email_verified: bool, username: str = ""
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
        user = User(username=email, email=email, oidc_subject=subject, oidc_username=username[:255])
        user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
        audit_record(
            user=None, action="user.create", resource_type="user", resource_id=user.pk, details={"via": "oidc"}
        )
    else:
        changed = []
        if user.oidc_subject is None and (user.is_superuser or user.break_glass_enabled):
            # An email address at the provider proves control of a mailbox, not of this account: a
            # superuser (or the break-glass account) is never handed to a Cognito identity that way.
            raise SignInRefused(
                f"{email} is a superuser here and is never linked to a Cognito identity by email: "
                "use a separate, non-superuser account for Cognito sign-in",
                email=email,
                user=user,
            )
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
        if username and username != user.oidc_username:
            user.oidc_username = username[:255]
            changed.append("oidc_username")
        if changed:
            user.save(update_fields=changed)

    previous = role_from_groups(list(user.groups.values_list("name", flat=True)))
    user_set_role(user=user, role=role)
    _drop_direct_permissions(user)
    if role != previous:
        audit_record(
            user=None,
            action="user.role_change",
            resource_type="user",
            resource_id=user.pk,
            details={"from": previous, "to": role, "groups": groups, "via": "oidc"},
        )
    return user, role


def _drop_direct_permissions(user: User) -> None:
    """A Cognito user's access is their role, nothing else: permissions granted one by one are removed."""
    direct = sorted(
        f"{app}.{code}" for app, code in user.user_permissions.values_list("content_type__app_label", "codename")
    )
    if not direct:
        return
    user.user_permissions.clear()
    audit_record(
        user=None,
        action="user.direct_permissions_removed",
        resource_type="user",
        resource_id=user.pk,
        details={"removed": direct[:200], "via": "oidc"},
    )


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


# --- Password guessing: lockouts (django-axes) --------------------------------------------------
def signin_lockout_record(*, request, username: str, ip_address: str) -> AuditLog:
    """Audit a lockout; when the account is a break-glass superuser, alert the Admins too.

    A locked break-glass account means someone is guessing the one password that still opens the
    platform where Cognito is the way in (or the way back in is blocked while Cognito is down).
    """
    username = (username or "")[:254]
    user = User.objects.filter(email__iexact=username).first() if username else None
    break_glass = bool(user and user.is_superuser and user.break_glass_enabled)
    entry = audit_record(
        user=None,
        action="login.lockout",
        resource_type="user",
        resource_id=(user.pk if user else "") or username,
        details={
            "username": username,
            "ip": (ip_address or "")[:64],
            "break_glass": break_glass,
            "user_agent": request.META.get("HTTP_USER_AGENT", "")[:200] if request is not None else "",
            "failure_limit": settings.AXES_FAILURE_LIMIT,
        },
    )
    logger.warning("sign-in locked out username=%s ip=%s break_glass=%s", username, ip_address, break_glass)
    if break_glass:
        admins_alert(
            subject=f"Break-glass account locked out ({settings.ENVIRONMENT})",
            text=(
                f"Password sign-in for the break-glass superuser {username} was locked after "
                f"{settings.AXES_FAILURE_LIMIT} failed attempts (last from {ip_address or 'an unknown address'}). "
                f"Someone may be guessing its password. Environment: {settings.ENVIRONMENT}. "
                f"Audit entry {entry.pk}."
            ),
        )
    return entry


def admins_alert(*, subject: str, text: str) -> bool:
    """Publish an alert to the platform's SNS alert topic (Admins subscribe to it). Never raises."""
    from wecare import aws  # the AWS client factory reads settings; imported where needed

    try:
        aws.client("sns").publish(TopicArn=settings.SNS_TOPIC_ARN, Subject=subject[:100], Message=text)
        return True
    except Exception:  # an alert must never turn a refusal into an error; the log has it
        logger.exception("admin alert could not be published to %s", settings.SNS_TOPIC_ARN)
        return False


# --- Roles between sign-ins: re-read from Cognito ---------------------------------------------
def _cognito_groups(identity: str) -> list[str] | None:
    """The user's Cognito groups, or None when the user is gone or disabled in the pool."""
    from wecare import aws  # the AWS client factory reads settings; imported where needed

    idp = aws.client("cognito-idp")
    pool = settings.COGNITO_USER_POOL_ID
    try:
        if not idp.admin_get_user(UserPoolId=pool, Username=identity).get("Enabled", True):
            return None
        groups: list[str] = []
        kwargs: dict = {"UserPoolId": pool, "Username": identity, "Limit": 60}
        while True:
            page = idp.admin_list_groups_for_user(**kwargs)
            groups += [g["GroupName"] for g in page.get("Groups", [])]
            if not page.get("NextToken"):
                return groups
            kwargs["NextToken"] = page["NextToken"]
    except idp.exceptions.UserNotFoundException:
        return None


@transaction.atomic
def user_roles_recheck(*, user: User) -> str | None:
    """Set the role of a Cognito user from the pool as it is now (removed, disabled or demoted there:
    removed or demoted here). Returns the role. Provider errors propagate (the next run retries)."""
    identity = user.oidc_username or user.oidc_subject
    if not identity:
        raise ValueError(f"{user.email} has never signed in with Cognito: there is nothing to re-check.")
    groups = _cognito_groups(identity)
    role = role_from_groups(groups or [])
    user = User.objects.select_for_update().get(pk=user.pk)
    previous = role_from_groups(list(user.groups.values_list("name", flat=True)))
    user_set_role(user=user, role=role)
    _drop_direct_permissions(user)
    user.roles_checked_at = timezone.now()
    user.save(update_fields=["roles_checked_at"])
    if role != previous:
        audit_record(
            user=None,
            action="user.role_change",
            resource_type="user",
            resource_id=user.pk,
            details={
                "from": previous,
                "to": role,
                "groups": groups,
                "via": "cognito-recheck",
                **({"reason": "not found or disabled in the user pool"} if groups is None else {}),
            },
        )
        logger.warning("role re-check: %s is now %s (was %s)", user.email, role or "no role", previous)
    return role


def users_roles_recheck(*, older_than_seconds: int | None = None) -> dict[str, int]:
    """Re-check every active Cognito user not checked for ``older_than_seconds`` (ROLE_RECHECK_SECONDS)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds or settings.ROLE_RECHECK_SECONDS)
    users = User.objects.filter(is_active=True, oidc_subject__isnull=False).filter(
        Q(roles_checked_at__isnull=True) | Q(roles_checked_at__lt=cutoff)
    )
    counts = {"checked": 0, "changed": 0, "failed": 0}
    for user in users.iterator():
        before = user.role
        try:
            after = user_roles_recheck(user=user)
        except Exception:  # one person's lookup failing must not stop the others
            logger.exception("role re-check failed for user %s", user.pk)
            counts["failed"] += 1
            continue
        counts["checked"] += 1
        counts["changed"] += int(after != before)
    return counts
