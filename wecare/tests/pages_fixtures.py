"""Fixtures for the operator pages: users per role, and a real Chromium driven by Playwright.

Registered from the root conftest (``pytest_plugins``) so every app's page tests share them.
Browser tests are marked ``@pytest.mark.browser`` and run against pytest-django's ``live_server``,
which needs transactional tests (the server thread reads what the test wrote).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Chromium as root, on a machine with no network but loopback: no sandbox, no background traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple 42"
WIDTHS = {"mobile": 320, "desktop": 1280}


@pytest.fixture
def page_user(db) -> Callable:
    """``page_user("Operator")`` → a user in that role group (None: no role), with PASSWORD."""
    from django.apps import apps
    from django.contrib.auth.models import Group

    from accounts.roles import ROLES, sync_role_groups
    from accounts.services import user_create, user_set_role

    counter = iter(range(1, 10_000))

    def make(role: str | None = "Operator", email: str | None = None):
        # A transactional test flushes the tables, the role groups with them: put them back.
        if Group.objects.filter(name__in=ROLES).count() != len(ROLES):
            sync_role_groups(apps)
        email = email or f"{(role or 'norole').lower()}{next(counter)}@example.com"
        user = user_create(email=email, role=role or "Viewer", password=PASSWORD)
        if role is None:
            user_set_role(user=user, role=None)
        return user

    return make


def _client_for(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


# Each its own Client, so a test may use several roles side by side.
@pytest.fixture
def viewer_client(page_user):
    return _client_for(page_user("Viewer"))


@pytest.fixture
def operator_client(page_user):
    return _client_for(page_user("Operator"))


@pytest.fixture
def admin_client_role(page_user):
    return _client_for(page_user("Admin"))


# --- Browser ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium():
    """One headless Debian Chromium per test module (launching takes a second or two).

    Module scope, not session: Playwright's sync API allows one running instance per thread, and
    other modules (the OIDC end-to-end test) start their own.
    """
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium package.")
    # Playwright's sync API keeps an event loop on this thread; the ORM calls the tests make
    # between browser steps are still plain synchronous code.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


# Django template source that reached the browser: a tag, a comment (a multi-line {# #} is not one), or a
# variable. "{{" followed by a WhatsApp placeholder ({{1}}, {{first_name}}) or a personalisation one
# ({{attr.city}}, {{attr.city|there}}: messaging.personalise) is a message body shown on purpose.
LEAKED_TEMPLATE_SYNTAX = re.compile(r"\{%|%\}|\{#|#\}|\{\{(?!(?:attr\.)?[a-z0-9_]+(?:\|[^{}<>%#]*)?\}\})")


def leaked_template_syntax(html: str) -> list[str]:
    """Each piece of Django template source in ``html``, with some context around it."""
    return [html[max(0, m.start() - 40) : m.end() + 40] for m in LEAKED_TEMPLATE_SYNTAX.finditer(html)]


class TemplateSourceWatch:
    """Checks every HTML answer a page receives (pages and htmx fragments) for leaked template source."""

    def __init__(self, page):
        self.checked: list[str] = []
        self.leaks: list[str] = []
        page.on("response", self._inspect)

    def _inspect(self, response) -> None:
        if "text/html" not in (response.headers.get("content-type") or "") or not 200 <= response.status < 300:
            return
        try:
            html = response.text()
        except Exception:  # noqa: BLE001 - the page navigated on and the browser dropped the body
            return
        self.checked.append(response.url)
        self.leaks += [f"{response.url}: {leak!r}" for leak in leaked_template_syntax(html)]

    @staticmethod
    def settle(page) -> None:
        """Let the response events still queued run (a round trip to the page) before it closes."""
        page.evaluate("0")


@pytest.fixture
def browser_page(chromium, live_server) -> Iterator:
    """A fresh browser context (no cookies) at desktop width; console errors fail the test, and so does
    any page or fragment that shows Django template source (``{%``, ``{#``, ``#}``, ``{{ ``)."""
    context = chromium.new_context(viewport={"width": WIDTHS["desktop"], "height": 900}, base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    watch = TemplateSourceWatch(page)
    yield page
    watch.settle(page)
    context.close()
    # A Content-Security-Policy violation or a script error is a bug, even when the page looks right.
    assert not [e for e in errors if not _expected_console_error(e)], errors
    assert not watch.leaks, watch.leaks


def _expected_console_error(text: str) -> bool:
    # A 403/404 that a test provokes on purpose is logged by Chromium (failed resource) and htmx.
    return bool(re.search(r"status of (403|404)|htmx:responseError", text))


@pytest.fixture
def login_as(page_user) -> Callable:
    """``login_as(page, "Operator")`` signs a new user of that role in through the local login form."""

    def login(page, role: str | None = "Operator", email: str | None = None):
        user = page_user(role, email=email)
        page.goto("/accounts/login/")
        page.fill("input[name=username]", user.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_load_state()
        assert "/accounts/login/" not in page.url, f"sign-in failed for {user.email}"
        return user

    return login


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as test-artifacts/screenshots/<name>-<width>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"]
    path = SCREENSHOTS / f"{name}-{width}.png"
    # caret="initial": hiding the caret injects a <style>, which the strict CSP rightly blocks.
    page.screenshot(path=str(path), full_page=True, caret="initial")
    return path


def no_horizontal_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


_STYLE_JS = """() => {
  const body = getComputedStyle(document.body);
  const main = getComputedStyle(document.querySelector('main'));
  const buttons = Array.from(document.querySelectorAll('button, .button')).filter(b => b.offsetParent !== null);
  return {
    font: body.fontFamily, weight: body.fontWeight, background: body.backgroundColor,
    mainFont: main.fontFamily, mainWeight: main.fontWeight, mainBackground: main.backgroundColor,
    buttons: buttons.map(b => [getComputedStyle(b).borderTopLeftRadius, getComputedStyle(b).backgroundColor,
                               getComputedStyle(b).fontFamily]),
  };
}"""


def assert_house_style(page) -> None:
    """Helvetica Light on white, and every visible button black with a 13 px radius."""
    style = page.evaluate(_STYLE_JS)
    assert "Helvetica" in style["font"] and "Helvetica" in style["mainFont"], style
    assert style["weight"] == "300" and style["mainWeight"] == "300", style
    assert style["background"] == "rgb(255, 255, 255)", style
    assert style["mainBackground"] in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), style
    assert style["buttons"], "no visible button to check"
    for radius, background, font in style["buttons"]:
        assert radius == "13px", style
        assert background == "rgb(0, 0, 0)", style
        assert "Helvetica" in font, style
