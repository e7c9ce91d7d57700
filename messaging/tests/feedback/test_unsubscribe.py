"""Email unsubscribe: List-Unsubscribe + One-Click headers and a visible link on every email, a signed
expiring token, the no-login page with one confirmation, and the RFC 8058 One-Click POST."""

from __future__ import annotations

import re
from datetime import timedelta
from unittest import mock

import pytest
from botocore.stub import ANY, Stubber
from django.core import signing
from django.test import Client
from django.utils import timezone

from accounts.models import AuditLog
from contacts.models import ConsentEvent
from contacts.services import contact_update
from messaging.channels import provider_client, provider_for
from messaging.channels.base import Delivery
from messaging.feedback.unsubscribe import unsubscribe_token, unsubscribe_url
from messaging.outbound.request import SendRequest
from messaging.safety import Clearance

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscriber(make_contact):
    return make_contact(email="diego@example.org", opt_ins={"email": True, "sms": True})


def _delivery(contact, message) -> Delivery:
    return Delivery(
        message=message,
        clearance=Clearance(contact=contact),
        now=timezone.now(),
        request=SendRequest.from_message(message),
    )


def _path(contact) -> str:
    return re.sub(r"^https?://[^/]+", "", unsubscribe_url(contact))


def test_every_email_carries_list_unsubscribe_one_click_and_a_visible_link(settings, subscriber, sent_message):
    settings.SEND_MODE = "LIVE"  # the call goes to a Stubber, which checks it against the SES v2 model
    settings.PUBLIC_BASE_URL = "https://base.wecare.digital"
    settings.EMAIL_UNSUBSCRIBE_MAILTO = "unsubscribe@wecare.digital"
    settings.SES_CONFIGURATION_SET = "base-wecare-digital-email"
    message = sent_message(subscriber, "email", content="See you at 19:30.", html="<p>See you at 19:30.</p>")
    provider = provider_for("email")
    request = provider.send_request(_delivery(subscriber, message))

    with Stubber(provider_client("sesv2")) as stubber:
        stubber.add_response("send_email", {"MessageId": "ses-1"}, {**request.params, "Content": ANY})
        provider.call(request)

    simple = request.params["Content"]["Simple"]
    headers = {h["Name"]: h["Value"] for h in simple["Headers"]}
    url = unsubscribe_url(subscriber)
    assert url.startswith("https://base.wecare.digital/unsubscribe/")
    assert headers["List-Unsubscribe"] == (
        f"<{url}>, <mailto:unsubscribe@wecare.digital?subject=unsubscribe%20{subscriber.pk}>"
    )
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert simple["Body"]["Text"]["Data"].startswith("See you at 19:30.")
    assert url in simple["Body"]["Text"]["Data"]
    assert f'<a href="{url}">unsubscribe</a>' in simple["Body"]["Html"]["Data"]
    assert request.params["ConfigurationSetName"] == "base-wecare-digital-email"
    assert request.params["EmailTags"] == [{"Name": "wecare-message-id", "Value": str(message.pk)}]


def test_without_a_mailbox_list_unsubscribe_has_the_https_link_only(settings, subscriber, sent_message):
    settings.EMAIL_UNSUBSCRIBE_MAILTO = ""
    request = provider_for("email").send_request(_delivery(subscriber, sent_message(subscriber, "email")))

    headers = {h["Name"]: h["Value"] for h in request.params["Content"]["Simple"]["Headers"]}
    assert headers["List-Unsubscribe"] == f"<{unsubscribe_url(subscriber)}>"


def test_the_page_asks_for_one_confirmation_and_a_get_changes_nothing(subscriber):
    response = Client().get(_path(subscriber))

    assert response.status_code == 200
    assert b"d***@example.org" in response.content and b"diego@example.org" not in response.content
    assert response["Referrer-Policy"] == "same-origin"
    subscriber.refresh_from_db()
    assert subscriber.opt_in_email is True


def test_confirming_withdraws_the_email_opt_in_with_source_unsubscribe(subscriber):
    client = Client(enforce_csrf_checks=True)
    page = client.get(_path(subscriber))
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()

    response = client.post(_path(subscriber) + "confirm", {"csrfmiddlewaretoken": token})

    assert response.status_code == 200 and b"You are unsubscribed" in response.content
    subscriber.refresh_from_db()
    assert subscriber.opt_in_email is False and subscriber.opt_in_sms is True
    event = ConsentEvent.objects.get(contact=subscriber, channel="email", new_value=False)
    assert (event.old_value, event.source, event.actor) == (True, "unsubscribe", "system")
    assert AuditLog.objects.get(action="contact.unsubscribe").details == {
        "channel": "email", "oneClick": False, "changed": True
    }  # fmt: skip


def test_the_confirmation_form_needs_its_csrf_token(subscriber):
    response = Client(enforce_csrf_checks=True).post(_path(subscriber) + "confirm")

    assert response.status_code == 403
    subscriber.refresh_from_db()
    assert subscriber.opt_in_email is True


def test_a_one_click_post_from_a_mail_client_unsubscribes_without_cookie_or_csrf_token(subscriber):
    response = Client(enforce_csrf_checks=True).post(
        _path(subscriber), "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.opt_in_email is False
    assert ConsentEvent.objects.get(contact=subscriber, new_value=False).source == "unsubscribe"
    assert AuditLog.objects.get(action="contact.unsubscribe").details["oneClick"] is True


def test_a_one_click_post_twice_changes_consent_once(subscriber):
    client = Client(enforce_csrf_checks=True)
    for _ in range(2):
        response = client.post(_path(subscriber), {"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200

    assert ConsentEvent.objects.filter(contact=subscriber, channel="email", new_value=False).count() == 1


def test_a_post_to_the_link_without_the_one_click_body_is_refused(subscriber):
    response = Client(enforce_csrf_checks=True).post(_path(subscriber), {"something": "else"})

    assert response.status_code == 400
    subscriber.refresh_from_db()
    assert subscriber.opt_in_email is True


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: "x" + t,  # payload changed
        lambda t: signing.dumps({"c": t, "a": "0" * 16}, salt="another.salt"),  # signed for something else
        lambda t: "x" * 600,  # absurdly long
    ],
)
def test_a_tampered_token_is_refused_and_changes_nothing(subscriber, tamper):
    bad = tamper(unsubscribe_token(subscriber))
    client = Client(enforce_csrf_checks=True)

    page = client.get(f"/unsubscribe/{bad}/")
    one_click = client.post(f"/unsubscribe/{bad}/", {"List-Unsubscribe": "One-Click"})

    assert page.status_code == 400 and b"This link does not work" in page.content
    assert one_click.status_code == 400
    subscriber.refresh_from_db()
    assert subscriber.opt_in_email is True
    assert not ConsentEvent.objects.filter(contact=subscriber, new_value=False).exists()


def test_an_expired_token_is_refused(settings, subscriber):
    settings.EMAIL_UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS = 30
    issued = timezone.now() - timedelta(days=31)
    with mock.patch("django.core.signing.time.time", return_value=issued.timestamp()):
        path = _path(subscriber)

    response = Client().post(path, {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 400 and b"expired" in response.content
    subscriber.refresh_from_db()
    assert subscriber.opt_in_email is True


def test_a_token_for_an_address_the_contact_no_longer_has_is_refused(subscriber):
    path = _path(subscriber)
    contact_update(contact=subscriber, data={"email": "new-address@example.org"}, actor=None, source="api")

    response = Client().get(path)

    assert response.status_code == 400 and b"no longer matches" in response.content
