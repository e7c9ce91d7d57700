"""End to end: a real browser signs in through a real OpenID provider to a live server.

The provider is the npm package `oidc-provider` (OpenID-certified), started here on loopback
(e2e/oidc-provider/server.mjs), issuing `cognito:groups` like the Cognito pool. Debian's Chromium,
driven by Playwright, follows the real redirects: authorization request with PKCE, the provider's
sign-in page, the callback, the admin, the API with the session, and sign-out at both ends.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from accounts.models import AuditLog, User
from wecare import aws, oidc

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_DIR = ROOT / "e2e" / "oidc-provider"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CLIENT_ID = "wecare-e2e"
PASSWORD = "e2e password that is long enough"
ACCOUNTS = {
    "Viewer": {"sub": "e2e-viewer", "email": "viewer@e2e.test", "groups": ["Viewer"]},
    "Operator": {"sub": "e2e-operator", "email": "operator@e2e.test", "groups": ["Operator"]},
    # Highest role wins: in Viewer too, she is an Admin.
    "Admin": {"sub": "e2e-admin", "email": "admin@e2e.test", "groups": ["Viewer", "Admin"]},
    None: {"sub": "e2e-nobody", "email": "nobody@e2e.test", "groups": ["Marketing"]},
}


@pytest.fixture(scope="module")
def identity_provider(live_server):
    """`node server.mjs` on a free loopback port, with a client whose secret is in Secrets Manager."""
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("e2e/oidc-provider/node_modules is missing: `make install` runs npm ci there.")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: `make install` installs it.")
    config = {
        "client": {
            "client_id": CLIENT_ID,
            "client_secret": aws.get_secret(django_settings.SECRET_NAME_OIDC_CLIENT_SECRET),
            "redirect_uris": [f"{live_server.url}/oidc/callback/"],
            "post_logout_redirect_uris": [f"{live_server.url}/accounts/login/"],
        },
        "accounts": [{**account, "password": PASSWORD} for account in ACCOUNTS.values()],
    }
    process = subprocess.Popen(
        [node, "server.mjs"],
        cwd=PROVIDER_DIR,
        env={**os.environ, "OIDC_PROVIDER_CONFIG": json.dumps(config), "NODE_ENV": "test"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr: list[str] = []
    threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True).start()
    line = process.stdout.readline()  # "READY <issuer>", or nothing if it died
    if not line.startswith("READY "):
        process.kill()
        pytest.fail(f"oidc-provider did not start: {line}{''.join(stderr)}")
    yield line.split()[1]
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def sso(settings, identity_provider):
    """The platform configured as in production: OIDC is the way in, endpoints by discovery."""
    settings.OIDC_ISSUER = identity_provider
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    for name in oidc.ENDPOINT_SETTINGS.values():
        setattr(settings, name, "")
    # oidc-provider speaks RP-initiated logout (Cognito's /logout takes logout_uri instead).
    settings.OIDC_LOGOUT_REDIRECT_PARAM = "post_logout_redirect_uri"
    settings.LOCAL_LOGIN_ENABLED = False
    policy = json.loads(json.dumps(settings.CONTENT_SECURITY_POLICY))
    policy["DIRECTIVES"]["form-action"].append(identity_provider)  # what settings.py adds for the logout host
    settings.CONTENT_SECURITY_POLICY = policy
    oidc.reset_caches()
    yield identity_provider
    oidc.reset_caches()


@pytest.fixture(scope="module")
def chromium_browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium package.")
    # Playwright's sync API runs an event loop in this thread; the ORM calls between steps are plain code.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium_browser, live_server):
    context = chromium_browser.new_context(base_url=live_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in_through_the_provider(page, role) -> None:
    page.goto("/admin/")
    page.wait_for_url("**/accounts/login/?next=%2Fadmin%2F")
    screenshot(page, "sign-in-sso")
    page.click("#sso-sign-in")
    page.wait_for_selector("input[name=email]")
    assert page.url.startswith(django_settings.OIDC_ISSUER + "/interaction/")
    page.fill("input[name=email]", ACCOUNTS[role]["email"])
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def api(page, method: str, path: str, data: dict | None = None):
    csrf = next((c["value"] for c in page.context.cookies() if c["name"] == "csrftoken"), "")
    return page.request.fetch(path, method=method, data=data, headers={"X-CSRFToken": csrf})


@pytest.mark.parametrize("role", ["Viewer", "Operator", "Admin"])
def test_each_role_signs_in_through_the_provider_and_sees_and_does_what_it_may(page, live_server, sso, role):
    sign_in_through_the_provider(page, role)
    page.wait_for_url(f"{live_server.url}/admin/")

    # The admin index: contacts for everyone, adding only for Operator and Admin, users only for Admin.
    assert page.locator('a[href="/admin/contacts/contact/"]').count() >= 1
    assert (page.locator('a[href="/admin/contacts/contact/add/"]').count() > 0) == (role != "Viewer")
    assert (page.locator('a[href="/admin/accounts/user/"]').count() > 0) == (role == "Admin")
    assert page.goto("/admin/accounts/user/").status == (200 if role == "Admin" else 403)

    # The API with the browser's session.
    me = api(page, "GET", "/api/me/")
    assert me.status == 200 and me.json()["role"] == role and me.json()["email"] == ACCOUNTS[role]["email"]
    assert api(page, "GET", "/api/contacts/").status == 200
    created = api(page, "POST", "/api/contacts/", {"name": f"E2E {role}", "email": f"{role.lower()}@contacts.test"})
    assert created.status == (403 if role == "Viewer" else 201), created.text()

    user = User.objects.get(email=ACCOUNTS[role]["email"])
    assert user.oidc_subject == ACCOUNTS[role]["sub"] and user.role == role and user.is_staff
    success = AuditLog.objects.get(action="login.success", user=user)
    assert success.details["method"] == "oidc" and success.details["ip"] == "127.0.0.1"


def test_signing_out_ends_the_session_here_and_at_the_provider(page, live_server, sso):
    sign_in_through_the_provider(page, "Operator")
    page.wait_for_url(f"{live_server.url}/admin/")

    page.click("#logout-form button[type=submit]")
    # The provider asks to confirm the end of its session, then sends the browser back here.
    page.click("button[name=logout][value=yes]")
    page.wait_for_url(f"{live_server.url}/accounts/login/")

    assert page.goto("/api/me/").status in (401, 403)
    # Signing in again needs the password again: the provider's session is gone too.
    page.goto("/accounts/login/")
    page.click("#sso-sign-in")
    page.wait_for_selector("input[name=password]")
    assert AuditLog.objects.filter(action="logout", details__method="oidc").count() == 1


def test_a_person_without_a_role_group_is_refused_with_a_403_page_and_an_audit_entry(page, live_server, sso):
    with page.expect_response(lambda response: "/oidc/callback/" in response.url) as callback:
        sign_in_through_the_provider(page, None)

    assert callback.value.status == 403
    screenshot(page, "sign-in-refused-no-role")
    assert "no role here" in page.locator("main").inner_text()
    refusal = AuditLog.objects.get(action="login.failure", details__username="nobody@e2e.test")
    assert refusal.details["method"] == "oidc" and "Marketing" in refusal.details["reason"]
    assert not User.objects.filter(email="nobody@e2e.test").exists()
    assert api(page, "GET", "/api/me/").status in (401, 403)
