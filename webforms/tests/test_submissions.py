"""A submission at /f/<slug>: the contact created or updated, each consent given with its proof,
nothing withdrawn, email double opt-in, the confirmation link."""

from __future__ import annotations

import time

import pytest
from django.core import signing
from django.test import Client

from contacts.models import ConsentEvent, Contact
from messaging.models import Message
from webforms.models import EmailConfirmation, FormSubmission
from webforms.services import confirmation_token
from webforms.tests.conftest import WORDING, confirmation_link, form_token_of

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Chromium/131"


def submit(form, data: dict, *, client: Client | None = None, ip: str = "203.0.113.7"):
    client = client or Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=BROWSER)
    page = client.get(f"/f/{form.slug}/")
    assert page.status_code == 200
    return client.post(f"/f/{form.slug}/", {"form_token": form_token_of(page.content.decode()), **data})


def test_a_new_visitor_becomes_a_contact_with_each_ticked_consent_and_its_proof(make_form):
    form = make_form()

    response = submit(form, {"name": "Asha Rao", "phone": "98765 43210", "consent_whatsapp": "on", "consent_sms": "on"})

    assert response.status_code == 302 and "/thanks/" in response["Location"]
    contact = Contact.objects.get(phone="+919876543210")
    assert (contact.name, contact.opt_in_whatsapp, contact.opt_in_sms, contact.opt_in_email) == (
        "Asha Rao", True, True, False,
    )  # fmt: skip
    event = ConsentEvent.objects.get(contact=contact, channel="whatsapp")
    assert (event.source, event.old_value, event.new_value) == ("form", None, True)
    submission = FormSubmission.objects.get()
    assert event.proof == {
        "form": str(form.pk),
        "form_slug": form.slug,
        "version": 1,
        "version_id": str(form.current_version.pk),
        "submission": str(submission.pk),
        "wording": WORDING["whatsapp"],
        "submitted_at": submission.created_at.isoformat(),
        "source_ip": "203.0.113.7",
        "user_agent": BROWSER,
    }
    assert submission.contact == contact and submission.contact_created is True
    assert submission.consents["sms"] == {"wording": WORDING["sms"], "outcome": "given"}
    assert "email" not in submission.consents  # not ticked: nothing recorded, nothing changed


def test_an_unticked_box_never_withdraws_a_consent_given_before(make_form):
    form = make_form()
    contact = Contact.objects.create(phone="+919876543210", opt_in_whatsapp=True, opt_in_sms=True)

    submit(form, {"phone": "+91 98765 43210", "consent_sms": "on"})

    contact.refresh_from_db()
    assert contact.opt_in_whatsapp is True and contact.opt_in_sms is True
    assert not ConsentEvent.objects.filter(contact=contact).exists()  # nothing changed: no event
    assert FormSubmission.objects.get().consents["sms"]["outcome"] == "already"


def test_an_existing_contact_is_matched_by_phone_and_only_its_blanks_are_filled(make_form, city_attribute):
    form = make_form(attributes=["city"])
    contact = Contact.objects.create(name="Asha", phone="+919876543210", attributes={})

    submit(form, {"name": "Someone Else", "phone": "9876543210", "email": "asha@example.org", "attr_city": "Pune",
                  "consent_whatsapp": "on"})  # fmt: skip

    contact.refresh_from_db()
    assert Contact.objects.count() == 1
    assert contact.name == "Asha"  # a public form never overwrites what is known
    assert contact.email == "asha@example.org" and contact.attributes == {"city": "Pune"}
    assert contact.opt_in_whatsapp is True
    assert FormSubmission.objects.get().contact_created is False


def test_an_existing_contact_is_matched_by_email_when_the_phone_is_unknown(make_form):
    form = make_form(double_opt_in=False)
    contact = Contact.objects.create(email="asha@example.org")

    submit(form, {"phone": "+919876543210", "email": "ASHA@example.org", "consent_email": "on", "consent_sms": "on"})

    contact.refresh_from_db()
    assert Contact.objects.count() == 1
    assert contact.phone == "+919876543210"
    assert contact.opt_in_email is True and contact.opt_in_sms is True


def test_a_consent_applies_only_to_the_address_typed(make_form):
    form = make_form()
    # Matched by email; the contact's phone is another number: a WhatsApp box ticked for the typed
    # number must not opt in the number on file.
    contact = Contact.objects.create(phone="+919811111111", email="asha@example.org")

    submit(form, {"phone": "+919876543210", "email": "asha@example.org", "consent_whatsapp": "on"})

    contact.refresh_from_db()
    assert contact.phone == "+919811111111" and contact.opt_in_whatsapp is False
    assert FormSubmission.objects.get().consents["whatsapp"]["outcome"] == "not_applied"


def test_email_consent_waits_for_the_confirmation_link_and_then_keeps_both_proofs(make_form):
    form = make_form()

    response = submit(form, {"email": "asha@example.org", "consent_email": "on"})

    contact = Contact.objects.get(email="asha@example.org")
    assert contact.opt_in_email is False  # not before the link is followed
    thanks = Client().get(response["Location"])
    assert "we sent you a message with a link" in thanks.content.decode()
    pending = EmailConfirmation.objects.get()
    assert pending.emailed_at is not None and pending.confirmed_at is None
    email = Message.objects.get(email_confirmation=pending)
    assert (email.channel, email.status) == ("email", "queued")
    assert email.subject == "Please confirm your email: Stay in touch"
    link = confirmation_link(contact)

    follower = Client(REMOTE_ADDR="198.51.100.4", HTTP_USER_AGENT="Mail app")
    page = follower.get(link)
    assert page.status_code == 200 and "Yes, send me emails" in page.content.decode()
    contact.refresh_from_db()
    assert contact.opt_in_email is False  # opening the link (a mail scanner does) confirms nothing
    confirmed = follower.post(link)

    assert confirmed.status_code == 200 and "is confirmed" in confirmed.content.decode()
    contact.refresh_from_db()
    assert contact.opt_in_email is True
    event = ConsentEvent.objects.get(contact=contact, channel="email")
    assert event.source == "form" and event.proof["wording"] == WORDING["email"]
    assert event.proof["source_ip"] == "203.0.113.7"
    assert event.proof["double_opt_in"]["source_ip"] == "198.51.100.4"
    assert event.proof["double_opt_in"]["user_agent"] == "Mail app"
    assert FormSubmission.objects.get().consents["email"]["outcome"] == "given"
    assert follower.post(link).status_code == 200  # again: already confirmed, nothing new
    assert ConsentEvent.objects.filter(contact=contact, channel="email").count() == 1


def test_a_confirmation_link_expires(make_form, settings, monkeypatch):
    form = make_form()
    submit(form, {"email": "asha@example.org", "consent_email": "on"})
    pending = EmailConfirmation.objects.get()
    settings.FORMS_CONFIRM_LINK_HOURS = 1
    now = time.time()
    with monkeypatch.context() as travel:
        travel.setattr(signing.time, "time", lambda: now - 2 * 3600)  # a link made two hours ago
        token = confirmation_token(pending)

    response = Client().post(f"/f/confirm/{token}/")

    assert response.status_code == 400 and "has expired" in response.content.decode()
    assert Contact.objects.get().opt_in_email is False


def test_a_forged_confirmation_link_confirms_nothing(make_form):
    form = make_form()
    submit(form, {"email": "asha@example.org", "consent_email": "on"})
    link = confirmation_link(Contact.objects.get())

    response = Client().post(link[:-3] + "xx/")

    assert response.status_code == 400 and "not valid" in response.content.decode()
    assert Contact.objects.get().opt_in_email is False


def test_without_double_opt_in_email_consent_is_given_at_once(make_form):
    form = make_form(double_opt_in=False)

    submit(form, {"email": "asha@example.org", "consent_email": "on"})

    assert Contact.objects.get().opt_in_email is True
    assert not EmailConfirmation.objects.exists() and not Message.objects.exists()


def test_only_one_confirmation_email_per_address_per_day(make_form):
    form = make_form()
    submit(form, {"email": "asha@example.org", "consent_email": "on"})

    response = submit(form, {"email": "asha@example.org", "consent_email": "on"})

    assert response.status_code == 302
    assert Message.objects.count() == 1
    second = FormSubmission.objects.order_by("-created_at").first()
    assert second.consents["email"]["outcome"] == "pending_confirmation"
    assert "a confirmation went to this address in the last 24 hours" in second.consents["email"]["detail"]
    thanks = Client().get(response["Location"]).content.decode()
    assert "confirmation email we sent you earlier" in thanks


def test_a_submission_keeps_the_version_it_was_shown_even_if_the_form_changes_meanwhile(make_form):
    from webforms.services import form_update

    form = make_form()
    client = Client()
    token = form_token_of(client.get(f"/f/{form.slug}/").content.decode())
    form_update(form=form, changes={"consent_sms": "New SMS wording."}, actor=None)

    client.post(f"/f/{form.slug}/", {"form_token": token, "phone": "+919876543210", "consent_sms": "on"})

    submission = FormSubmission.objects.get()
    assert submission.version.number == 1 and submission.consents["sms"]["wording"] == WORDING["sms"]
    assert ConsentEvent.objects.get(channel="sms").proof["wording"] == WORDING["sms"]


def test_voice_and_rcs_consent_are_captured_like_the_other_phone_channels(make_form):
    wording = {**WORDING, "voice": "Yes, call me with delivery updates.", "rcs": "Yes, send me RCS messages."}
    form = make_form(wording=wording)

    response = submit(form, {"phone": "98765 43211", "consent_voice": "on", "consent_rcs": "on"})

    contact = Contact.objects.get(phone="+919876543211")
    assert response.status_code == 302
    assert (contact.opt_in_voice, contact.opt_in_rcs, contact.opt_in_sms) == (True, True, False)
    event = ConsentEvent.objects.get(contact=contact, channel="voice")
    assert event.source == "form" and event.proof["wording"] == wording["voice"]
