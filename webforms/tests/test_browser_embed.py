"""The form embedded in another site's page, in a real browser: shown and submittable inside the
iframe when that site is allowed, refused by the browser when it is not."""

from __future__ import annotations

import http.server
import threading

import pytest
from playwright.sync_api import expect

from contacts.models import Contact
from webforms.services import form_update

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def other_site():
    """Another site, on 127.0.0.1 (the live server is "localhost": another origin, and another site
    for cookies), serving one page with the embed snippet: ``other_site(src) -> its URL``.

    A real server, not a routed page: Chromium lets only a local page frame a local server."""
    pages: dict[str, str] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            body = pages.get("html", "").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def serve(src: str) -> str:
        pages["html"] = (
            "<!doctype html><html><body><h1>Our shop</h1>"
            f'<iframe src="{src}" width="100%" height="900"></iframe></body></html>'
        )
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    server.shutdown()
    server.server_close()


def test_an_allowed_site_shows_the_form_in_an_iframe_and_a_visitor_submits_it(
    browser_page, live_server, make_form, other_site
):
    form = make_form(double_opt_in=False)
    site = other_site(f"{live_server.url}/f/{form.slug}/")
    form_update(form=form, changes={"embed_origins": site}, actor=None)

    browser_page.goto(f"{site}/shop/")
    frame = browser_page.frame_locator("iframe")
    expect(frame.locator("h1")).to_have_text("Stay in touch")
    frame.locator("input[name=phone]").fill("+919876543210")
    frame.locator("input[name=email]").fill("asha@example.org")
    frame.locator("input[name=consent_sms]").check()
    frame.locator("input[name=consent_email]").check()
    frame.locator("button[type=submit]").click()

    # No cookie reaches a cross-site frame: the signed form token carries the anti-forgery check.
    expect(frame.locator("[data-testid=form-thanks]")).to_be_visible()
    contact = Contact.objects.get(phone="+919876543210")
    assert contact.opt_in_sms is True and contact.opt_in_email is True


def test_a_site_not_allowed_cannot_frame_the_form(chromium, live_server, make_form, other_site):
    form = make_form(embed_origins="https://somewhere-else.example")
    site = other_site(f"{live_server.url}/f/{form.slug}/")
    context = chromium.new_context()
    page = context.new_page()
    refusals: list[str] = []
    page.on("console", lambda msg: refusals.append(msg.text) if "frame-ancestors" in msg.text else None)
    try:
        with page.expect_response(f"{live_server.url}/f/{form.slug}/"):
            page.goto(f"{site}/shop/")
        page.wait_for_timeout(500)
        # Chromium shows its own "refused to connect" page in the frame, not the form.
        assert page.frame_locator("iframe").locator("[data-testid=public-form]").count() == 0
        assert refusals, "Chromium should report the frame-ancestors refusal"
    finally:
        context.close()
