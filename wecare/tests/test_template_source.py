"""No Django template source reaches a page: the check every browser test runs, and the templates themselves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wecare.tests.pages_fixtures import TemplateSourceWatch, leaked_template_syntax

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "html",
    [
        "<p>{# Polled: a new conversation</p>",
        "<p>moves to the top #}</p>",
        "<p>{% if contact %}</p>",
        "<a href='{{ link.url }}'>",
        "<p>{{contact.name}}</p>",
    ],
)
def test_template_source_in_a_page_is_found(html):
    assert leaked_template_syntax(html)


def test_a_whatsapp_template_body_shown_on_purpose_is_not_template_source():
    assert leaked_template_syntax("<p>Hello {{1}}, your order {{2}}; hi {{customer_name}}</p>") == []


def test_every_django_comment_in_the_templates_closes_on_its_own_line():
    files = [p for p in ROOT.rglob("*.html") if ".venv" not in p.parts and "node_modules" not in p.parts]
    assert files
    open_comments = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"\{#(?!.*#\})", line)
    ]
    assert open_comments == []


def test_the_dm_inbox_shows_no_template_source(operator_client):
    response = operator_client.get("/dm/")

    assert response.status_code == 200
    assert leaked_template_syntax(response.content.decode()) == []


@pytest.mark.browser
def test_the_browser_check_fails_a_page_that_leaks_template_source(chromium):
    context = chromium.new_context()
    page = context.new_page()
    watch = TemplateSourceWatch(page)
    pages = {
        "http://leaky.test/": "<html><body>{# Polled: a new conversation\n moves to the top #}<p>ok</p></body></html>",
        "http://clean.test/": "<html><body><p>Hello {{1}}</p></body></html>",
    }
    context.route("**/*", lambda route: route.fulfill(body=pages[route.request.url], content_type="text/html"))
    try:
        page.goto("http://clean.test/")
        watch.settle(page)  # its answer read before the next navigation drops the body (a race otherwise)
        page.goto("http://leaky.test/")
        watch.settle(page)
    finally:
        context.close()

    assert watch.checked == ["http://clean.test/", "http://leaky.test/"]
    assert len(watch.leaks) == 2 and all(leak.startswith("http://leaky.test/") for leak in watch.leaks)
