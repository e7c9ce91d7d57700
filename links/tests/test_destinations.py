"""What a short link may lead to: http(s) only, never the platform's own sign-in pages."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from links.validation import destination_validate


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example.com/summer?ref=1",
        "http://example.org",
        "https://example.com/a path".replace(" ", "%20"),
    ],
)
def test_http_and_https_addresses_are_accepted(url):
    assert destination_validate(f"  {url} ") == url


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("javascript:alert(1)", "scheme"),
        ("JavaScript:alert(document.cookie)", "scheme"),
        ("data:text/html;base64,PHNjcmlwdD4=", "scheme"),
        ("ftp://example.com/file", "scheme"),
        ("//example.com/no-scheme", "scheme"),
        ("https://", "invalid"),
        ("https://exa mple.com", "invalid"),
        ("https://user:secret@example.com/", "credentials"),
        ("http://localhost/accounts/login/", "sign_in"),
        ("http://127.0.0.1:8000/admin/login/?next=/admin/", "sign_in"),
        ("http://localhost/oidc/authenticate/", "sign_in"),
        ("http://localhost/contacts/?next=https://evil.example", "sign_in"),
        ("http://localhost/l/another", "sign_in"),
        ("https://wecare.auth.us-east-1.amazoncognito.com/login?client_id=x", "sign_in"),
        ("", "required"),
    ],
)
def test_dangerous_or_self_referring_addresses_are_refused_with_a_reason(url, code):
    with pytest.raises(ValidationError) as refused:
        destination_validate(url)
    assert refused.value.code == code
    assert refused.value.messages[0].endswith(".")


def test_an_address_longer_than_2048_characters_is_refused():
    with pytest.raises(ValidationError):
        destination_validate("https://example.com/" + "a" * 2048)


def test_the_public_link_host_counts_as_the_platform(settings):
    settings.LINK_BASE_URL = "https://go.wecare.example"
    with pytest.raises(ValidationError):
        destination_validate("https://go.wecare.example/accounts/login/")
    assert destination_validate("https://go.wecare.example/pricing")
