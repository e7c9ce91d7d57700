"""Where Cognito is the way in, the password form is for local/test and a break-glass superuser only."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from accounts.models import AuditLog, User
from accounts.services import user_create, user_set_break_glass

pytestmark = pytest.mark.django_db

PASSWORD = "a long enough password 1"


@pytest.fixture
def oidc_production_like(settings):
    """OIDC configured, and not a local/test environment: the password form is closed."""
    settings.OIDC_RP_CLIENT_ID = "app-client"
    settings.LOCAL_LOGIN_ENABLED = False


def superuser(email: str = "root@example.com", *, break_glass: bool = False) -> User:
    user = User.objects.create_superuser(username=email, email=email, password=PASSWORD)
    if break_glass:
        user_set_break_glass(user=user, enabled=True, by=None)
    return user


def post_login(client, email: str):
    return client.post("/accounts/login/", {"username": email, "password": PASSWORD, "next": "/admin/"})


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_an_operator_cannot_use_a_password_where_cognito_is_the_way_in(client, oidc_production_like):
    user_create(email="ops@example.com", role="Operator", password=PASSWORD)

    response = post_login(client, "ops@example.com")

    assert response.status_code == 200 and not signed_in(client)
    entry = AuditLog.objects.get(action="login.failure")
    assert entry.details["method"] == "password" and entry.details["username"] == "ops@example.com"
    assert "password sign-in is closed" in entry.details["reason"]


def test_a_superuser_without_break_glass_cannot_use_a_password_either(client, oidc_production_like):
    superuser()

    assert post_login(client, "root@example.com").status_code == 200
    assert not signed_in(client)


def test_a_superuser_an_admin_enabled_for_break_glass_signs_in_with_a_password(client, oidc_production_like):
    superuser(break_glass=True)

    response = post_login(client, "root@example.com")

    assert response.status_code == 302 and signed_in(client)
    entry = AuditLog.objects.get(action="login.success")
    assert entry.details["method"] == "password-break-glass"


def test_a_wrong_password_is_audited_as_a_failure(client, oidc_production_like):
    superuser(break_glass=True)

    client.post("/accounts/login/", {"username": "root@example.com", "password": "wrong"})

    entry = AuditLog.objects.get(action="login.failure")
    assert entry.details["reason"] == "wrong email or password"
    assert entry.details["ip"] == "127.0.0.1"


def test_in_local_and_test_anyone_with_a_password_may_use_the_form(client, settings):
    settings.OIDC_RP_CLIENT_ID = "app-client"
    settings.LOCAL_LOGIN_ENABLED = True
    user_create(email="ops@example.com", role="Operator", password=PASSWORD)

    assert post_login(client, "ops@example.com").status_code == 302


def test_without_oidc_configured_the_password_form_is_the_way_in(client, settings):
    settings.OIDC_RP_CLIENT_ID = ""
    settings.LOCAL_LOGIN_ENABLED = False
    user_create(email="ops@example.com", role="Operator", password=PASSWORD)

    assert post_login(client, "ops@example.com").status_code == 302


def test_the_sign_in_page_offers_sso_and_keeps_the_password_form_for_break_glass(client, oidc_production_like):
    html = client.get("/accounts/login/?next=/admin/").content.decode()

    assert 'href="/oidc/authenticate/?next=/admin/"' in html
    assert "Break-glass sign-in" in html


def test_the_sign_in_page_shows_only_the_password_form_without_oidc(client, settings):
    settings.OIDC_RP_CLIENT_ID = ""
    html = client.get("/accounts/login/").content.decode()

    assert "/oidc/authenticate/" not in html
    assert 'name="password"' in html and "Break-glass" not in html


def test_break_glass_is_for_superusers_only():
    user = user_create(email="ops@example.com", role="Admin", password=PASSWORD)

    with pytest.raises(ValueError, match="superusers only"):
        user_set_break_glass(user=user, enabled=True, by=None)


def test_enabling_and_disabling_break_glass_is_audited_with_who_did_it():
    admin = user_create(email="admin@example.com", role="Admin")
    root = superuser()

    user_set_break_glass(user=root, enabled=True, by=admin)
    user_set_break_glass(user=root, enabled=False, by=admin)

    entries = AuditLog.objects.filter(resource_id=str(root.pk)).order_by("timestamp")
    actions = list(entries.values_list("action", "actor"))
    assert ("user.break_glass_enable", "admin@example.com") in actions
    assert ("user.break_glass_disable", "admin@example.com") in actions


def test_the_break_glass_command_enables_it_for_a_superuser_and_refuses_others():
    root = superuser()
    user_create(email="ops@example.com", role="Operator")

    call_command("break_glass", "root@example.com", "--enable")
    root.refresh_from_db()
    assert root.break_glass_enabled

    with pytest.raises(CommandError, match="superusers only"):
        call_command("break_glass", "ops@example.com", "--enable")


def test_only_admins_see_the_users_in_the_admin_with_role_and_dates(client):
    admin = user_create(email="admin@example.com", role="Admin", password=PASSWORD)
    operator = user_create(email="ops@example.com", role="Operator", password=PASSWORD)

    client.force_login(operator)
    assert client.get("/admin/accounts/user/").status_code == 403
    assert "/admin/accounts/user/" not in client.get("/admin/").content.decode()

    client.force_login(admin)
    response = client.get("/admin/accounts/user/")
    html = response.content.decode()
    assert response.status_code == 200
    for column in ("Email", "Role", "Created at", "Last login at", "Break-glass password sign-in"):
        assert column.lower() in html.lower()
    assert "ops@example.com" in html and "Operator" in html


def test_the_admin_refuses_break_glass_for_someone_who_is_not_a_superuser(client):
    admin = User.objects.create_superuser(username="root@example.com", email="root@example.com", password=PASSWORD)
    operator = user_create(email="ops@example.com", role="Operator")
    client.force_login(admin)
    url = f"/admin/accounts/user/{operator.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and not isinstance(v, list)}
    data.update(
        {
            "username": operator.username,
            "email": operator.email,
            "groups": [g.pk for g in operator.groups.all()],
            "is_active": "on",
            "is_staff": "on",
            "break_glass_enabled": "on",
            "date_joined_0": operator.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": operator.date_joined.strftime("%H:%M:%S"),
        }
    )
    data.pop("password", None)
    data.pop("last_login", None)
    data.pop("date_joined", None)
    data.pop("is_superuser", None)

    response = client.post(url, data)

    assert response.status_code == 200  # the form comes back with the error
    assert "superusers only" in response.content.decode()
    operator.refresh_from_db()
    assert not operator.break_glass_enabled
