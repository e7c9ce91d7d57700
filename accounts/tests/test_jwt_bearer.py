"""REST clients with Cognito bearer tokens, checked against keys served on a local JWKS endpoint."""

from __future__ import annotations

import base64
import hmac
import json
import time
from hashlib import sha256

import jwt
import pytest

from accounts.models import AuditLog, User
from accounts.services import user_create
from accounts.tests.oidc_support import CLIENT_ID, FakeProvider, SigningKey
from wecare import oidc

pytestmark = pytest.mark.django_db

ME = "/api/me/"


@pytest.fixture
def provider(settings):
    fake = FakeProvider().start()
    settings.OIDC_ISSUER = fake.issuer
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    for name in oidc.ENDPOINT_SETTINGS.values():
        setattr(settings, name, "")  # everything comes from discovery
    settings.OIDC_JWKS_MIN_REFRESH_SECONDS = 60
    oidc.reset_caches()
    yield fake
    fake.stop()
    oidc.reset_caches()


def call(client, token: str, path: str = ME):
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


def refusals(method: str = "bearer"):
    return AuditLog.objects.filter(action="login.failure", details__method=method)


def assert_refused(response, words: str) -> None:
    assert response.status_code == 401, response.content
    assert words in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    entry = refusals().latest("timestamp")
    assert words in entry.details["reason"]
    assert entry.details["ip"] == "127.0.0.1"


def test_a_valid_id_token_signs_the_person_in_with_the_role_of_their_group(client, provider):
    response = call(client, provider.token({"cognito:groups": ["Operator"], "email": "Ops@Example.com"}))

    assert response.status_code == 200, response.content
    assert response.json()["email"] == "ops@example.com"
    assert response.json()["role"] == "Operator"
    user = User.objects.get(email="ops@example.com")
    assert user.oidc_subject == "sub-1"
    assert user.is_staff


def test_a_valid_access_token_signs_the_person_in_and_userinfo_supplies_the_email(client, provider):
    token = provider.token({"cognito:groups": ["Viewer"], "sub": "sub-access"}, use="access")
    provider.userinfo[token] = {"sub": "sub-access", "email": "reader@example.com", "email_verified": "true"}

    response = call(client, token)

    assert response.status_code == 200, response.content
    assert response.json() == {**response.json(), "email": "reader@example.com", "role": "Viewer"}


def test_an_access_token_for_a_known_subject_needs_no_userinfo_call(client, provider):
    user = user_create(email="known@example.com", role="Viewer")
    User.objects.filter(pk=user.pk).update(oidc_subject="sub-known")
    token = provider.token({"sub": "sub-known", "cognito:groups": ["Admin"]}, use="access")

    response = call(client, token)  # provider.userinfo is empty: a userinfo call would be refused

    assert response.status_code == 200, response.content
    assert response.json()["role"] == "Admin"


def test_the_highest_group_wins_and_a_group_removed_at_the_provider_is_removed_here(client, provider):
    assert call(client, provider.token({"cognito:groups": ["Viewer", "Admin", "Operator"]})).json()["role"] == "Admin"

    assert call(client, provider.token({"cognito:groups": ["Viewer"]})).json()["role"] == "Viewer"
    user = User.objects.get(oidc_subject="sub-1")
    assert sorted(user.groups.values_list("name", flat=True)) == ["Viewer"]


def test_a_token_without_any_role_group_is_refused_with_403_and_audited(client, provider):
    response = call(client, provider.token({"cognito:groups": ["Marketing"]}))

    assert response.status_code == 403
    assert "no role" in response.json()["detail"]
    assert "no role" in refusals().get().details["reason"]
    assert AuditLog.objects.filter(action="forbidden").exists()
    assert not User.objects.filter(email="person@example.com").exists()


def test_an_expired_token_is_refused(client, provider):
    past = int(time.time()) - 7200
    assert_refused(call(client, provider.token({"iat": past, "exp": past + 3600})), "expired")


def test_a_token_signed_by_another_key_with_a_known_key_id_is_refused_as_forged(client, provider):
    forger = SigningKey.generate(kid=provider.key.kid)
    assert_refused(call(client, provider.token(key=forger)), "signature")


def test_a_token_with_its_payload_changed_after_signing_is_refused(client, provider):
    header, payload, signature = provider.token({"cognito:groups": ["Viewer"]}).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["cognito:groups"] = ["Admin"]
    tampered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert_refused(call(client, f"{header}.{tampered}.{signature}"), "signature")


def test_a_token_from_another_issuer_is_refused(client, provider):
    assert_refused(call(client, provider.token({"iss": "https://cognito-idp.us-east-1.amazonaws.com/other"})), "issuer")


def test_an_id_token_for_another_client_is_refused(client, provider):
    assert_refused(call(client, provider.token({"aud": "someone-else"})), "another client")


def test_an_access_token_for_another_client_is_refused(client, provider):
    assert_refused(call(client, provider.token({"client_id": "someone-else"}, use="access")), "another client")


def test_an_unsigned_token_is_refused(client, provider):
    claims = jwt.decode(provider.token(), options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": provider.key.kid})
    assert_refused(call(client, unsigned), "unsigned")


def test_an_hmac_token_keyed_with_the_public_key_is_refused(client, provider):
    header = base64.urlsafe_b64encode(
        json.dumps({"alg": "HS256", "typ": "JWT", "kid": provider.key.kid}).encode()
    ).rstrip(b"=")
    body = provider.token().split(".")[1].encode()
    public = json.dumps(provider.key.public_jwk()).encode()
    sig = base64.urlsafe_b64encode(hmac.new(public, header + b"." + body, sha256).digest()).rstrip(b"=")
    assert_refused(call(client, (header + b"." + body + b"." + sig).decode()), "only RS256")


def test_a_refresh_or_unlabelled_token_is_refused(client, provider):
    assert_refused(call(client, provider.token({"token_use": "refresh"})), "token_use")
    assert_refused(call(client, provider.token({"token_use": None})), "token_use")


def test_garbage_and_a_malformed_header_are_refused(client, provider):
    assert_refused(call(client, "not-a-jwt"), "not a JWT")
    response = client.get(ME, HTTP_AUTHORIZATION="Bearer two tokens")
    assert_refused(response, "exactly one token")


def test_no_credentials_get_401_naming_the_bearer_scheme(client, provider):
    response = client.get(ME)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_the_session_still_works_beside_bearer_tokens(client, provider):
    client.force_login(user_create(email="session@example.com", role="Viewer"))
    response = client.get(ME)
    assert response.status_code == 200
    assert response.json()["email"] == "session@example.com"


def test_bearer_tokens_are_refused_with_a_clear_error_when_oidc_is_not_configured(client, provider, settings):
    settings.OIDC_RP_CLIENT_ID = ""
    assert_refused(call(client, provider.token()), "not configured")


def test_the_jwks_is_fetched_once_and_cached(client, provider):
    for _ in range(3):
        assert call(client, provider.token()).status_code == 200
    assert provider.jwks_hits == 1
    assert provider.discovery_hits == 1


def test_an_unknown_key_id_refreshes_the_jwks_so_a_rotated_key_is_accepted(client, provider, settings):
    settings.OIDC_JWKS_MIN_REFRESH_SECONDS = 1
    assert call(client, provider.token()).status_code == 200
    new_key = SigningKey.generate()
    provider.published = [new_key, provider.key]
    time.sleep(1.1)

    assert call(client, provider.token(key=new_key)).status_code == 200
    assert provider.jwks_hits == 2


def test_unknown_key_ids_do_not_refetch_the_jwks_more_often_than_the_rate_limit(client, provider):
    assert call(client, provider.token()).status_code == 200
    for _ in range(5):
        stranger = SigningKey.generate()
        assert_refused(call(client, provider.token(key=stranger)), "unknown key")
    assert provider.jwks_hits == 1


def test_a_provider_that_cannot_be_reached_gives_503_not_a_sign_in(client, provider, settings):
    settings.OIDC_OP_JWKS_ENDPOINT = "http://127.0.0.1:9/jwks.json"  # discard port: nothing listens
    response = call(client, provider.token())
    assert response.status_code == 503
    assert refusals().filter(details__reason__icontains="unavailable").exists()


def test_the_openapi_schema_declares_the_bearer_scheme(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["components"]["securitySchemes"]["cognitoBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schema["components"]["securitySchemes"]["cognitoBearer"]["description"],
    }
    assert {"cognitoBearer": []} in schema["paths"]["/api/me/"]["get"]["security"]
