"""The browser's Cognito sign-in, against a provider on loopback that checks PKCE and the client secret."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.conf import settings as django_settings

from accounts.models import AuditLog, User
from accounts.services import user_create
from accounts.tests.oidc_support import CLIENT_ID, FakeProvider
from wecare import aws, oidc

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def provider(settings):
    fake = FakeProvider(client_secret=aws.get_secret(django_settings.SECRET_NAME_OIDC_CLIENT_SECRET)).start()
    settings.OIDC_ISSUER = fake.issuer
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    for name in oidc.ENDPOINT_SETTINGS.values():
        setattr(settings, name, "")
    oidc.reset_caches()
    yield fake
    fake.stop()
    oidc.reset_caches()


def start_sign_in(client, next_url: str = "/admin/") -> dict:
    response = client.get("/oidc/authenticate/", {"next": next_url})
    assert response.status_code == 302, response.content
    return {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}


def finish_sign_in(client, provider, params: dict, claims: dict, **overrides):
    code = provider.issue_code(
        claims={"sub": "sub-1", "email": "person@example.com", "email_verified": True, **claims},
        nonce=overrides.get("nonce", params["nonce"]),
        code_challenge=overrides.get("code_challenge", params["code_challenge"]),
        redirect_uri=params["redirect_uri"],
    )
    return client.get("/oidc/callback/", {"code": code, "state": params["state"]})


def sign_in(client, provider, groups: list[str], **claims):
    params = start_sign_in(client)
    return finish_sign_in(client, provider, params, {"cognito:groups": groups, **claims})


def failures():
    return AuditLog.objects.filter(action="login.failure", details__method="oidc")


def session_user(client):
    return client.session.get("_auth_user_id")


def test_signing_in_sends_the_browser_to_the_provider_with_pkce_state_and_nonce(client, provider):
    response = client.get("/oidc/authenticate/", {"next": "/admin/"})

    location = urlsplit(response["Location"])
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{provider.issuer}/oauth2/authorize"
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == "http://testserver/oidc/callback/"
    assert params["scope"] == "openid email"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32


def test_a_person_in_the_operator_group_signs_in_and_lands_where_they_were_going(client, provider):
    response = sign_in(client, provider, ["Operator"])

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    user = User.objects.get(email="person@example.com")
    assert session_user(client) == str(user.pk)
    assert user.role == "Operator" and user.is_staff and user.oidc_subject == "sub-1"
    assert user.last_login is not None
    entry = AuditLog.objects.get(action="login.success")
    assert entry.user == user
    assert entry.details["method"] == "oidc" and entry.details["ip"] == "127.0.0.1"
    assert entry.details["role"] == "Operator"
    # The code went back with the PKCE verifier and the secret read from Secrets Manager.
    request = provider.token_requests[-1]
    assert request["form"]["code_verifier"]
    secret = aws.get_secret(django_settings.SECRET_NAME_OIDC_CLIENT_SECRET)
    assert request["authorization"] == "Basic " + base64.b64encode(f"{CLIENT_ID}:{secret}".encode()).decode()
    assert "client_secret" not in request["form"]


def test_every_sign_in_takes_the_role_from_the_groups_again(client, provider):
    sign_in(client, provider, ["Viewer", "Admin"])
    assert User.objects.get(email="person@example.com").role == "Admin"

    client.logout()
    sign_in(client, provider, ["Viewer"])

    user = User.objects.get(email="person@example.com")
    assert list(user.groups.values_list("name", flat=True)) == ["Viewer"]
    assert AuditLog.objects.filter(action="user.role_change", details__to="Viewer").exists()


def test_a_person_without_a_role_group_is_refused_with_a_clear_403_page_and_an_audit_entry(client, provider):
    response = sign_in(client, provider, ["Marketing"])

    assert response.status_code == 403
    html = response.content.decode()
    assert "no role here" in html and "Viewer" in html
    assert session_user(client) is None
    assert not User.objects.filter(email="person@example.com").exists()
    entry = failures().get()
    assert entry.details["username"] == "person@example.com" and "no role" in entry.details["reason"]
    assert AuditLog.objects.filter(action="forbidden", details__reason__startswith="no role").exists()


def test_an_existing_user_whose_groups_were_all_removed_loses_the_role_and_is_refused(client, provider):
    sign_in(client, provider, ["Operator"])
    client.logout()

    response = sign_in(client, provider, [])

    assert response.status_code == 403
    user = User.objects.get(email="person@example.com")
    assert user.role is None and not user.is_staff
    assert failures().get().user == user


def test_an_existing_user_is_linked_by_verified_email_at_the_first_sign_in(client, provider):
    existing = user_create(email="person@example.com", role="Viewer")

    sign_in(client, provider, ["Operator"])

    existing.refresh_from_db()
    assert existing.oidc_subject == "sub-1" and existing.role == "Operator"


def test_an_unverified_email_does_not_take_over_an_existing_user(client, provider):
    existing = user_create(email="person@example.com", role="Admin")

    response = sign_in(client, provider, ["Admin"], email_verified=False)

    assert response.status_code == 403
    existing.refresh_from_db()
    assert existing.oidc_subject is None
    assert "not verified" in failures().get().details["reason"]


def test_a_disabled_account_is_refused(client, provider):
    sign_in(client, provider, ["Viewer"])
    client.logout()
    User.objects.filter(email="person@example.com").update(is_active=False)

    response = sign_in(client, provider, ["Viewer"])

    assert response.status_code == 403
    assert "disabled" in failures().get().details["reason"]


def test_a_callback_with_a_state_this_browser_did_not_start_is_refused_and_audited(client, provider):
    params = start_sign_in(client)
    params["state"] = "x" * 32

    response = finish_sign_in(client, provider, params, {"cognito:groups": ["Admin"]})

    assert response.status_code == 400
    assert session_user(client) is None
    assert "state does not match" in failures().get().details["reason"]
    assert provider.token_requests == []


def test_a_callback_without_a_sign_in_started_in_this_browser_is_refused_and_audited(client, provider):
    response = client.get("/oidc/callback/", {"code": "abc", "state": "def"})

    assert response.status_code == 400
    assert "no sign-in was started" in failures().get().details["reason"]


def test_a_state_cannot_be_used_twice(client, provider):
    params = start_sign_in(client)
    assert finish_sign_in(client, provider, params, {"cognito:groups": ["Viewer"]}).status_code == 302
    client.logout()

    response = finish_sign_in(client, provider, params, {"cognito:groups": ["Viewer"]})

    assert response.status_code == 400


def test_an_error_from_the_provider_is_shown_in_our_words_and_audited(client, provider):
    params = start_sign_in(client)

    response = client.get(
        "/oidc/callback/", {"error": "access_denied", "error_description": "User cancelled", "state": params["state"]}
    )

    assert response.status_code == 401
    assert "the identity provider denied access" in response.content.decode()
    assert "User cancelled" not in response.content.decode()
    assert "denied access" in failures().get().details["reason"]


def test_a_forged_error_link_neither_signs_anyone_out_nor_shows_its_text(client, provider):
    # given someone signed in, who follows a link another site made
    sign_in(client, provider, ["Operator"])
    assert session_user(client) is not None

    # when
    response = client.get(
        "/oidc/callback/",
        {"error": "<script>alert(1)</script>", "error_description": "Call +1-555-0100 to restore your account"},
    )

    # then they stay signed in and none of the link's words reach the page
    page = response.content.decode()
    assert response.status_code == 401
    assert session_user(client) is not None
    assert "alert(1)" not in page and "555-0100" not in page and "restore your account" not in page
    assert "the identity provider refused the sign-in" in page


def test_the_first_cognito_sign_in_never_takes_over_a_superuser_by_email(client, provider):
    root = User.objects.create_superuser(username="person@example.com", email="person@example.com", password="x" * 20)

    response = sign_in(client, provider, ["Admin"])

    assert response.status_code == 403
    assert session_user(client) is None
    root.refresh_from_db()
    assert root.oidc_subject is None
    assert "never linked to a Cognito identity by email" in failures().get().details["reason"]


def test_the_first_cognito_sign_in_never_takes_over_a_break_glass_account_by_email(client, provider):
    root = User.objects.create_superuser(username="person@example.com", email="person@example.com", password="x" * 20)
    User.objects.filter(pk=root.pk).update(is_superuser=False, break_glass_enabled=True)

    response = sign_in(client, provider, ["Admin"])

    assert response.status_code == 403
    root.refresh_from_db()
    assert root.oidc_subject is None


def test_a_cognito_sign_in_removes_permissions_granted_one_by_one(client, provider):
    from django.contrib.auth.models import Permission

    sign_in(client, provider, ["Viewer"])
    client.logout()
    user = User.objects.get(email="person@example.com")
    user.user_permissions.add(Permission.objects.get(codename="delete_contact"))

    sign_in(client, provider, ["Viewer"])

    user = User.objects.get(pk=user.pk)
    assert not user.user_permissions.exists()
    assert not user.has_perm("contacts.delete_contact")
    entry = AuditLog.objects.get(action="user.direct_permissions_removed")
    assert entry.details["removed"] == ["contacts.delete_contact"]


def test_a_code_whose_pkce_verifier_does_not_match_is_refused_by_the_provider_and_audited(client, provider):
    params = start_sign_in(client)

    response = finish_sign_in(client, provider, params, {"cognito:groups": ["Admin"]}, code_challenge="A" * 43)

    assert response.status_code == 401
    assert session_user(client) is None
    assert "PKCE verification failed" in failures().get().details["reason"]


def test_an_id_token_with_another_nonce_is_refused(client, provider):
    params = start_sign_in(client)

    response = finish_sign_in(client, provider, params, {"cognito:groups": ["Admin"]}, nonce="replayed-nonce")

    assert response.status_code == 401
    assert "nonce" in failures().get().details["reason"]


def test_an_id_token_for_another_client_is_refused(client, provider):
    response = sign_in(client, provider, ["Admin"], aud="another-client")

    assert response.status_code == 401
    assert "another client" in failures().get().details["reason"]


def test_a_discovery_document_naming_another_issuer_stops_the_sign_in(client, provider):
    provider.discovery_issuer = "https://impostor.example.com"

    response = client.get("/oidc/authenticate/")

    assert response.status_code == 503
    assert "expected" in failures().get().details["reason"]


def test_discovery_is_fetched_once_and_cached(client, provider):
    sign_in(client, provider, ["Viewer"])
    client.logout()
    sign_in(client, provider, ["Viewer"])

    assert provider.discovery_hits == 1
    assert provider.jwks_hits == 1


def test_explicit_endpoint_settings_win_over_discovery(client, provider, settings):
    discovered = provider.discovery()
    for name, setting in oidc.ENDPOINT_SETTINGS.items():
        setattr(settings, setting, discovered[name])
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = "https://sso.wecare.digital/oauth2/authorize"

    params = start_sign_in(client)
    assert client.get("/oidc/authenticate/")["Location"].startswith("https://sso.wecare.digital/oauth2/authorize?")
    response = finish_sign_in(client, provider, params, {"cognito:groups": ["Viewer"]})

    assert response.status_code == 302
    assert provider.discovery_hits == 0


def test_signing_out_ends_the_local_session_and_the_cognito_session(client, provider, settings):
    settings.OIDC_OP_LOGOUT_ENDPOINT = "https://sso.wecare.digital/logout"
    sign_in(client, provider, ["Operator"])

    response = client.post("/admin/logout/")

    assert response.status_code == 302
    assert response["Location"] == "https://sso.wecare.digital/logout?" + urlencode(
        {"client_id": CLIENT_ID, "logout_uri": "http://testserver/accounts/login/"}
    )
    assert session_user(client) is None
    assert AuditLog.objects.filter(action="logout", details__method="oidc").exists()


def test_the_logout_parameter_and_return_address_are_configurable(client, provider, settings):
    settings.OIDC_LOGOUT_REDIRECT_PARAM = "post_logout_redirect_uri"
    settings.OIDC_LOGOUT_REDIRECT_URL = "https://app.wecare.digital/bye"
    sign_in(client, provider, ["Viewer"])

    response = client.post("/accounts/logout/")

    assert response["Location"] == f"{provider.issuer}/logout?" + urlencode(
        {"client_id": CLIENT_ID, "post_logout_redirect_uri": "https://app.wecare.digital/bye"}
    )


def test_signing_out_of_a_password_session_stays_local(client, provider):
    user = user_create(email="local@example.com", role="Viewer", password="a long local password 1")
    client.force_login(user, backend="accounts.backends.PasswordBackend")

    response = client.post("/accounts/logout/")

    assert response["Location"] == "/accounts/login/"
    assert session_user(client) is None


def test_a_deactivated_user_loses_an_oidc_session_at_the_next_request(client, provider):
    sign_in(client, provider, ["Viewer"])
    User.objects.filter(email="person@example.com").update(is_active=False)

    assert client.get("/api/me/").status_code in (401, 403)


def test_sign_out_needs_a_post(client, provider):
    assert client.get("/accounts/logout/").status_code == 405


def test_the_admin_login_form_sends_people_to_the_sign_in_page(client, provider):
    response = client.get("/admin/login/", {"next": "/admin/"})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fadmin%2F"


def test_the_oidc_pages_do_not_exist_when_oidc_is_not_configured(client, settings):
    settings.OIDC_RP_CLIENT_ID = ""
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/", {"code": "a", "state": "b"}).status_code == 404


def test_configuring_oidc_lets_the_logout_redirect_through_the_content_security_policy():
    env = {**os.environ, "OIDC_CLIENT_ID": "abc", "DJANGO_SETTINGS_MODULE": "wecare.settings"}
    code = "import django; django.setup(); from django.conf import settings as s; " + (
        "print(s.OIDC_ISSUER); print(s.CONTENT_SECURITY_POLICY['DIRECTIVES']['form-action'])"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)

    issuer, form_action = out.stdout.strip().splitlines()
    assert issuer == "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_CC9u1fYh6"
    assert form_action == "[\"'self'\", 'https://sso.wecare.digital']"


def test_an_http_issuer_is_refused_outside_local_and_test(tmp_path):
    key_file = tmp_path / "django-secret-key"
    key_file.write_text("x" * 50)
    env = {
        **os.environ,
        "OIDC_CLIENT_ID": "abc",
        "OIDC_ISSUER": "http://idp.example.com",
        "ENVIRONMENT": "staging",
        "DJANGO_SECRET_KEY_FILE": str(key_file),  # a deployed environment never takes the key from a variable
        "ALLOWED_HOSTS": "base.wecare.digital",
        "DJANGO_SETTINGS_MODULE": "wecare.settings",
    }
    env.pop("DJANGO_SECRET_KEY", None)
    setup = [sys.executable, "-c", "import django; django.setup()"]
    out = subprocess.run(setup, env=env, cwd=ROOT, capture_output=True)

    assert out.returncode != 0
    assert b"OIDC_ISSUER" in out.stderr and b"https://" in out.stderr
