"""Sign-in as an attacker tries it: guessing passwords (per account, per address, behind the load
balancer), weak passwords from the command line, stale sessions, roles removed at Cognito, and an
Admin who is not a superuser reaching for superuser powers."""

from __future__ import annotations

import time
import uuid

import pytest
from django.conf import settings as django_settings
from django.contrib import auth
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.test import Client, RequestFactory

from accounts.middleware import SESSION_SEEN_KEY, SESSION_STARTED_KEY
from accounts.models import AuditLog, User
from accounts.services import user_create, user_roles_recheck, user_set_break_glass, users_roles_recheck
from wecare import aws

pytestmark = pytest.mark.django_db

PASSWORD = "a long enough password 1"
LOGIN = "/accounts/login/"


def attempt(client, email: str, password: str, **extra):
    return client.post(LOGIN, {"username": email, "password": password}, **extra)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- Password guessing ----------------------------------------------------------------------------
def test_guessing_a_password_locks_the_account_even_against_the_right_password_and_is_audited(client, settings):
    settings.AXES_FAILURE_LIMIT = 5
    user_create(email="ops@example.com", role="Operator", password=PASSWORD)

    for _ in range(4):
        assert attempt(client, "ops@example.com", "guess").status_code == 200
    assert attempt(client, "ops@example.com", "guess").status_code == 429  # the 5th failure locks

    locked = attempt(client, "ops@example.com", PASSWORD)

    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert not signed_in(client)
    lockout = AuditLog.objects.filter(action="login.lockout").first()
    assert lockout is not None
    assert lockout.details["username"] == "ops@example.com" and lockout.details["ip"] == "127.0.0.1"


def test_the_account_stays_locked_from_another_address(settings):
    settings.AXES_FAILURE_LIMIT = 3
    user_create(email="ops@example.com", role="Operator", password=PASSWORD)
    for n in range(3):
        attempt(Client(REMOTE_ADDR=f"198.51.100.{n + 1}"), "ops@example.com", "guess")

    response = attempt(Client(REMOTE_ADDR="203.0.113.9"), "ops@example.com", PASSWORD)

    assert response.status_code == 429


def test_one_address_guessing_many_accounts_is_locked_but_other_addresses_are_not(settings):
    settings.AXES_FAILURE_LIMIT = 3
    user_create(email="ops@example.com", role="Operator", password=PASSWORD)
    guesser = Client(REMOTE_ADDR="198.51.100.7")
    for n in range(3):
        attempt(guesser, f"someone{n}@example.com", "guess")

    assert attempt(guesser, "ops@example.com", PASSWORD).status_code == 429
    assert attempt(Client(REMOTE_ADDR="203.0.113.9"), "ops@example.com", PASSWORD).status_code == 302


def test_behind_the_load_balancer_the_client_address_it_saw_is_the_one_locked(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.TRUSTED_PROXY_HOPS = 1
    user_create(email="ops@example.com", role="Operator", password=PASSWORD)
    # Every request arrives from the load balancer; it appends the caller's address.
    guesser = Client(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.7")
    for n in range(3):
        attempt(guesser, f"someone{n}@example.com", "guess")
    # A spoofed X-Forwarded-For from the guesser does not move it to a fresh address.
    spoofed = Client(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7")

    assert attempt(spoofed, "ops@example.com", PASSWORD).status_code == 429
    colleague = Client(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert attempt(colleague, "ops@example.com", PASSWORD).status_code == 302


def test_locking_out_the_break_glass_account_alerts_the_admins(client, settings, alert_inbox):
    settings.AXES_FAILURE_LIMIT = 3
    settings.OIDC_RP_CLIENT_ID = "app-client"
    settings.LOCAL_LOGIN_ENABLED = False
    root = User.objects.create_superuser(username="root@example.com", email="root@example.com", password=PASSWORD)
    user_set_break_glass(user=root, enabled=True, by=None)

    for _ in range(3):
        attempt(client, "root@example.com", "guess")

    published = alert_inbox()
    assert len(published) >= 1
    assert published[0]["Subject"].startswith("Break-glass account locked out")
    assert "root@example.com" in published[0]["Message"] and "127.0.0.1" in published[0]["Message"]
    assert AuditLog.objects.filter(action="login.lockout", details__break_glass=True).exists()


def test_locking_out_an_ordinary_account_sends_no_alert(client, settings, alert_inbox):
    settings.AXES_FAILURE_LIMIT = 3
    user_create(email="ops@example.com", role="Operator", password=PASSWORD)

    for _ in range(3):
        attempt(client, "ops@example.com", "guess")

    assert alert_inbox() == []
    assert AuditLog.objects.filter(action="login.lockout", details__break_glass=False).exists()


def test_failed_cognito_callbacks_do_not_count_as_password_guesses(client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    user_create(email="ops@example.com", role="Operator", password=PASSWORD)
    request = RequestFactory().get("/oidc/callback/", REMOTE_ADDR="127.0.0.1")
    for _ in range(5):
        assert auth.authenticate(request=request, nonce="n", code_verifier="v") is None

    assert attempt(client, "ops@example.com", PASSWORD).status_code == 302


# --- Passwords set from the command line -----------------------------------------------------------
@pytest.mark.parametrize(
    ("password", "reason"), [("12345678", "too common"), ("short1", "too short"), ("48271937465", "entirely numeric")]
)
def test_add_user_refuses_a_password_the_validators_refuse(password, reason):
    with pytest.raises(CommandError, match=reason):
        call_command("add_user", "weak@example.com", "--role", "Viewer", "--password", password)

    assert not User.objects.filter(email="weak@example.com").exists()


def test_add_user_accepts_a_strong_password():
    call_command("add_user", "strong@example.com", "--role", "Viewer", "--password", PASSWORD)

    assert User.objects.get(email="strong@example.com").check_password(PASSWORD)


# --- Sessions -------------------------------------------------------------------------------------
def _age_session(client, *, started_ago: int, seen_ago: int) -> None:
    session = client.session
    now = int(time.time())
    session[SESSION_STARTED_KEY] = now - started_ago
    session[SESSION_SEEN_KEY] = now - seen_ago
    session.save()


def test_a_session_idle_for_longer_than_the_limit_is_ended_and_audited(client, settings):
    settings.SESSION_IDLE_SECONDS = 8 * 3600
    client.force_login(user_create(email="ops@example.com", role="Operator"))
    _age_session(client, started_ago=9 * 3600, seen_ago=8 * 3600 + 5)

    response = client.get("/admin/")

    assert response.status_code == 302 and "login" in response["Location"]
    assert not signed_in(client)
    assert AuditLog.objects.get(action="session.expired").details["reason"] == "idle"


def test_a_busy_session_still_ends_at_the_absolute_limit(client, settings):
    settings.SESSION_ABSOLUTE_SECONDS = 24 * 3600
    client.force_login(user_create(email="ops@example.com", role="Operator"))
    _age_session(client, started_ago=24 * 3600 + 5, seen_ago=10)

    assert client.get("/admin/").status_code == 302
    assert AuditLog.objects.get(action="session.expired").details["reason"] == "absolute"


def test_a_session_within_both_limits_carries_on(client):
    client.force_login(user_create(email="ops@example.com", role="Operator"))
    _age_session(client, started_ago=7 * 3600, seen_ago=3600)

    assert client.get("/admin/").status_code == 200
    assert not AuditLog.objects.filter(action="session.expired").exists()


def test_the_default_session_limits_are_8_hours_idle_and_24_hours_in_all():
    assert django_settings.SESSION_IDLE_SECONDS == 8 * 3600
    assert django_settings.SESSION_ABSOLUTE_SECONDS == 24 * 3600
    assert django_settings.SESSION_COOKIE_AGE <= 24 * 3600


# --- Roles re-read from Cognito between sign-ins ------------------------------------------------------
@pytest.fixture
def pool(settings):
    idp = aws.client("cognito-idp")
    pool_id = idp.create_user_pool(PoolName=f"wecare-{uuid.uuid4().hex[:8]}")["UserPool"]["Id"]
    for group in ("Viewer", "Operator", "Admin"):
        idp.create_group(UserPoolId=pool_id, GroupName=group)
    settings.COGNITO_USER_POOL_ID = pool_id
    yield idp, pool_id
    idp.delete_user_pool(UserPoolId=pool_id)


def _cognito_person(idp, pool_id: str, group: str | None) -> User:
    idp.admin_create_user(UserPoolId=pool_id, Username="person")
    if group:
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username="person", GroupName=group)
    user = user_create(email="person@example.com", role="Admin")
    User.objects.filter(pk=user.pk).update(oidc_subject="sub-person", oidc_username="person")
    return User.objects.get(pk=user.pk)


def test_someone_demoted_in_cognito_is_demoted_here_without_signing_in_again(client, pool):
    idp, pool_id = pool
    user = _cognito_person(idp, pool_id, "Viewer")
    client.force_login(user)

    counts = users_roles_recheck(older_than_seconds=60)

    assert counts == {"checked": 1, "changed": 1, "failed": 0}
    assert User.objects.get(pk=user.pk).role == "Viewer"
    assert client.get("/admin/auth/group/").status_code == 403  # their open session lost the Admin pages
    change = AuditLog.objects.get(action="user.role_change")
    assert change.details["from"] == "Admin" and change.details["to"] == "Viewer"
    assert change.details["via"] == "cognito-recheck"


def test_someone_removed_from_every_group_loses_every_role(pool):
    idp, pool_id = pool
    user = _cognito_person(idp, pool_id, None)

    assert user_roles_recheck(user=user) is None
    assert User.objects.get(pk=user.pk).role is None


def test_someone_disabled_or_deleted_in_cognito_loses_the_role(pool):
    idp, pool_id = pool
    user = _cognito_person(idp, pool_id, "Operator")
    idp.admin_disable_user(UserPoolId=pool_id, Username="person")

    assert user_roles_recheck(user=user) is None
    idp.admin_delete_user(UserPoolId=pool_id, Username="person")
    assert user_roles_recheck(user=user) is None


def test_the_recheck_also_removes_permissions_granted_one_by_one(pool):
    idp, pool_id = pool
    user = _cognito_person(idp, pool_id, "Viewer")
    user.user_permissions.add(Permission.objects.get(codename="delete_contact"))

    user_roles_recheck(user=user)

    assert not User.objects.get(pk=user.pk).user_permissions.exists()


def test_the_recheck_is_scheduled_in_beat():
    entry = django_settings.CELERY_BEAT_SCHEDULE["roles-recheck"]
    assert entry["task"] == "accounts.roles_recheck"


# --- The user admin: superuser powers stay with superusers ------------------------------------------
@pytest.fixture
def admin_client():
    admin = user_create(email="admin@example.com", role="Admin")
    client = Client()
    client.force_login(admin)
    return client, admin


def _change_data(client, user: User, **changes) -> dict:
    form = client.get(f"/admin/accounts/user/{user.pk}/change/").context["adminform"].form
    data = {
        "username": user.username,
        "email": user.email,
        "groups": [g.pk for g in user.groups.all()],
        "is_active": "on",
        "is_staff": "on",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    assert "is_superuser" not in form.fields and "user_permissions" not in form.fields
    data.update(changes)
    return data


def test_an_admin_who_is_not_a_superuser_cannot_make_anyone_a_superuser_or_grant_permissions(admin_client):
    client, admin = admin_client
    delete_contact = Permission.objects.get(codename="delete_contact")

    response = client.post(
        f"/admin/accounts/user/{admin.pk}/change/",
        _change_data(client, admin, is_superuser="on", user_permissions=[delete_contact.pk], break_glass_enabled="on"),
    )

    assert response.status_code == 302
    admin = User.objects.get(pk=admin.pk)
    assert not admin.is_superuser and not admin.break_glass_enabled
    assert not admin.user_permissions.exists()


def test_an_admin_who_is_not_a_superuser_cannot_set_a_password(admin_client):
    client, _ = admin_client
    operator = user_create(email="ops@example.com", role="Operator")

    response = client.post(
        f"/admin/accounts/user/{operator.pk}/password/", {"password1": PASSWORD, "password2": PASSWORD}
    )

    assert response.status_code == 403
    assert not User.objects.get(pk=operator.pk).has_usable_password()
    assert AuditLog.objects.filter(action="forbidden", details__reason="only a superuser may set a password").exists()


def test_an_admin_who_is_not_a_superuser_cannot_change_a_superuser(admin_client):
    client, _ = admin_client
    root = User.objects.create_superuser(username="root@example.com", email="root@example.com", password=PASSWORD)

    response = client.post(f"/admin/accounts/user/{root.pk}/change/", {"email": "mine@example.com"})

    assert response.status_code == 403
    assert User.objects.get(pk=root.pk).email == "root@example.com"


def test_an_admin_who_is_not_a_superuser_adds_people_without_a_password(admin_client):
    client, _ = admin_client

    response = client.post("/admin/accounts/user/add/", {"email": "New.Person@Example.com", "password1": PASSWORD})

    assert response.status_code == 302
    created = User.objects.get(email="new.person@example.com")
    assert not created.has_usable_password() and not created.is_superuser


def test_a_superuser_still_has_the_privilege_fields():
    root = User.objects.create_superuser(username="root@example.com", email="root@example.com", password=PASSWORD)
    client = Client()
    client.force_login(root)
    operator = user_create(email="ops@example.com", role="Operator")

    form = client.get(f"/admin/accounts/user/{operator.pk}/change/").context["adminform"].form

    assert {"is_superuser", "user_permissions", "break_glass_enabled"} <= set(form.fields)
