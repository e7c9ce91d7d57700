"""The public page's protections: frame policy for embedding only, the anti-forgery token, the
honeypot, the per-address rate limit, errors that keep what was typed."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from contacts.models import Contact
from webforms.models import FormSubmission
from webforms.services import form_token, form_update
from webforms.tests.conftest import WORDING, form_token_of

pytestmark = pytest.mark.django_db


def test_the_form_page_needs_no_sign_in_and_shows_the_exact_wording(make_form):
    form = make_form()

    response = Client().get(f"/f/{form.slug}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Stay in touch" in html and "Tell us how we may contact you." in html
    for wording in WORDING.values():
        assert wording in html
    assert 'name="website"' in html and 'class="hp-field"' in html  # the honeypot, hidden by CSS


def test_an_unpublished_or_unknown_form_is_not_found(make_form):
    form = make_form()
    form_update(form=form, changes={"is_published": False}, actor=None)

    assert Client().get(f"/f/{form.slug}/").status_code == 404
    assert Client().get("/f/no-such-form/").status_code == 404


def test_by_default_no_site_may_frame_the_form(make_form):
    form = make_form()

    response = Client().get(f"/f/{form.slug}/")

    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_only_the_configured_sites_may_frame_the_form_and_only_the_form(make_form, settings):
    settings.FORMS_EMBED_ORIGINS = ["https://shop.example.com"]
    form = make_form(embed_origins="https://www.example.org\nhttps://blog.example.org")

    response = Client().get(f"/f/{form.slug}/")

    csp = response["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://shop.example.com https://www.example.org https://blog.example.org" in csp
    assert "X-Frame-Options" not in response  # it cannot name sites; frame-ancestors governs
    # Every other page keeps refusing frames.
    other = Client().get("/accounts/login/")
    assert other["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in other["Content-Security-Policy"]


def test_embed_origins_must_be_origins(make_form):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as excinfo:
        make_form(embed_origins="javascript:alert(1)")

    assert "is not an origin" in str(excinfo.value.message_dict["embed_origins"])


def test_a_post_without_the_forms_token_is_refused_and_keeps_the_input(make_form):
    form = make_form()

    response = Client().post(f"/f/{form.slug}/", {"name": "Asha", "phone": "+919876543210", "consent_sms": "on"})

    html = response.content.decode()
    assert response.status_code == 403
    assert "did not come from our site" in html
    assert 'value="Asha"' in html and 'value="+919876543210"' in html
    assert not Contact.objects.exists()


def test_a_token_of_another_form_is_refused(make_form):
    form, other = make_form(), make_form()

    response = Client().post(
        f"/f/{form.slug}/", {"form_token": form_token(other.current_version), "phone": "+919876543210"}
    )

    assert response.status_code == 403 and not Contact.objects.exists()


def test_a_post_from_a_site_not_allowed_to_embed_the_form_is_refused(make_form):
    form = make_form(embed_origins="https://www.example.org")
    token = form_token(form.current_version)
    data = {"form_token": token, "phone": "+919876543210", "consent_sms": "on"}

    refused = Client().post(f"/f/{form.slug}/", data, HTTP_ORIGIN="https://evil.example.net")
    allowed = Client().post(f"/f/{form.slug}/", data, HTTP_ORIGIN="https://www.example.org")

    assert refused.status_code == 403
    assert allowed.status_code == 302 and Contact.objects.get().opt_in_sms is True


def test_a_filled_honeypot_looks_like_success_and_stores_nothing(make_form):
    form = make_form()
    token = form_token(form.current_version)

    response = Client().post(
        f"/f/{form.slug}/",
        {"form_token": token, "phone": "+919876543210", "consent_sms": "on", "website": "http://spam.example"},
    )

    assert response.status_code == 200 and "Thank you" in response.content.decode()
    assert not Contact.objects.exists() and not FormSubmission.objects.exists()


def test_a_submission_that_fails_validation_shows_clear_errors_and_keeps_what_was_typed(make_form):
    form = make_form()
    token = form_token(form.current_version)

    response = Client().post(
        f"/f/{form.slug}/",
        {"form_token": token, "name": "Asha Rao", "phone": "12", "email": "not-an-email", "consent_whatsapp": "on"},
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "Enter a valid email address" in html
    assert 'class="field-error"' in html
    assert 'value="Asha Rao"' in html and 'value="12"' in html and 'value="not-an-email"' in html
    assert 'name="consent_whatsapp" id="id_consent_whatsapp" checked' in html
    assert not Contact.objects.exists()


def test_a_ticked_channel_needs_its_address(make_form):
    form = make_form()
    token = form_token(form.current_version)

    response = Client().post(f"/f/{form.slug}/", {"form_token": token, "email": "a@example.org", "consent_sms": "on"})

    assert response.status_code == 200 and "SMS needs your phone number." in response.content.decode()
    assert not Contact.objects.exists()


def test_a_phone_or_an_email_is_needed(make_form):
    form = make_form()

    response = Client().post(f"/f/{form.slug}/", {"form_token": form_token(form.current_version), "name": "Asha"})

    assert response.status_code == 200 and "Please give a phone number or an email address" in response.content.decode()


def test_submissions_from_one_address_are_rate_limited(make_form, settings):
    settings.FORMS_SUBMISSIONS_PER_ADDRESS_PER_HOUR = 2
    form = make_form()
    address = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    client = Client(REMOTE_ADDR=address)

    statuses = []
    for n in range(3):
        token = form_token_of(client.get(f"/f/{form.slug}/").content.decode())
        response = client.post(f"/f/{form.slug}/", {"form_token": token, "phone": f"+91987654321{n}"})
        statuses.append(response.status_code)

    assert statuses == [302, 302, 429]
    assert "Too many forms were sent from your connection" in response.content.decode()
    assert 'value="+919876543212"' in response.content.decode()  # the input is kept
    assert int(response["Retry-After"]) > 0
    assert Contact.objects.count() == 2
    # Another address is not affected.
    other = Client(REMOTE_ADDR="192.0.2.77")
    token = form_token_of(other.get(f"/f/{form.slug}/").content.decode())
    assert other.post(f"/f/{form.slug}/", {"form_token": token, "phone": "+919876543219"}).status_code == 302


def test_a_declared_attribute_is_asked_checked_and_stored(make_form, db):
    from contacts.models import AttributeDefinition, AttributeType

    AttributeDefinition.objects.create(name="visits", label="Visits per month", type=AttributeType.NUMBER)
    form = make_form(attributes=["visits"])
    client = Client()
    html = client.get(f"/f/{form.slug}/").content.decode()
    assert "Visits per month" in html

    bad = client.post(f"/f/{form.slug}/", {"form_token": form_token_of(html), "phone": "+919876543210",
                                           "attr_visits": "many"})  # fmt: skip
    good = client.post(f"/f/{form.slug}/", {"form_token": form_token_of(html), "phone": "+919876543210",
                                            "attr_visits": "4"})  # fmt: skip

    assert bad.status_code == 200 and "is not a number" in bad.content.decode()
    assert good.status_code == 302 and Contact.objects.get().attributes == {"visits": 4}
