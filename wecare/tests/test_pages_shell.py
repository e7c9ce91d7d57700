from __future__ import annotations

import re

import pytest

from accounts.models import AuditLog

pytestmark = pytest.mark.django_db


def sidebar_labels(html: str) -> list[str]:
    return re.findall(r'<span class="nav-label">([^<]+)</span>', html)


def test_the_workspace_asks_a_visitor_to_sign_in(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_an_expired_session_on_an_htmx_request_sends_the_whole_page_to_sign_in(client):
    response = client.get("/agent/", headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/agent/"})

    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=/agent/"


def test_the_shell_carries_the_title_and_the_sidebar_in_the_agreed_order(admin_client_role):
    response = admin_client_role.get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "<title>WECARE.DIGITAL</title>" in html
    assert sidebar_labels(html) == [
        "Pay",
        "Link",
        "Forms",
        "Docs",
        "Invoice",
        "DM",
        "Contacts",
        "Bulk Messaging",
        "Agent",
        "Operations",  # Admins only
    ]


@pytest.mark.parametrize("module,label", [("pay", "Pay"), ("docs", "Docs"), ("invoice", "Invoice")])
def test_modules_that_do_not_exist_say_so(viewer_client, module, label):
    response = viewer_client.get(f"/{module}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert f"<title>{label} · WECARE.DIGITAL</title>" in html
    assert "Coming soon" in html and "not built yet" in html
    assert 'aria-current="page"' in html


def test_the_agent_page_is_an_honest_empty_state(viewer_client):
    response = viewer_client.get("/agent/")

    assert response.status_code == 200
    assert "No suggestions waiting" in response.content.decode()


def test_a_sidebar_click_gets_only_the_title_sidebar_and_main(viewer_client):
    response = viewer_client.get("/pay/", headers={"HX-Request": "true", "HX-Boosted": "true", "HX-Target": "main"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "<head" not in html
    assert html.lstrip().startswith("<title>Pay · WECARE.DIGITAL</title>")
    assert 'id="nav"' in html and 'id="main"' in html
    assert "HX-Request" in response["Vary"]


def test_a_history_restore_gets_the_whole_page(viewer_client):
    response = viewer_client.get(
        "/pay/", headers={"HX-Request": "true", "HX-Target": "main", "HX-History-Restore-Request": "true"}
    )

    assert "<!doctype html>" in response.content.decode()


def test_every_page_loads_htmx_from_this_server_and_nothing_inline(viewer_client):
    response = viewer_client.get("/")

    html = response.content.decode()
    csp = response["Content-Security-Policy"]
    assert '<script src="/static/vendor/htmx/htmx.min.js"' in html
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None  # no inline script
    assert "<style" not in html and " style=" not in html
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
    assert '"includeIndicatorStyles":false' in html


def test_a_user_without_a_role_is_refused_and_the_refusal_is_audited(client, page_user):
    user = page_user(None)
    client.force_login(user)

    response = client.get("/agent/")

    assert response.status_code == 403
    assert "your account has no role" in response.content.decode()
    entry = AuditLog.objects.get(action="forbidden")
    assert entry.user == user and "no role" in entry.details["reason"]


def test_an_unknown_page_is_a_404_inside_the_shell(viewer_client):
    response = viewer_client.get("/nothing-here/")

    assert response.status_code == 404
    assert "There is nothing at this address." in response.content.decode()


def test_the_vendored_htmx_is_the_version_the_package_file_pins():
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pinned = json.loads((root / "frontend" / "package.json").read_text())["dependencies"]["htmx.org"]
    vendored = (root / "static" / "vendor" / "htmx" / "htmx.min.js").read_text()
    assert f'version:"{pinned}"' in vendored
