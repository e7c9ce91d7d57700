"""Fixtures of the Forms tests: a form per test (built by the services), the public client, the
confirmation email's link as the DRY_RUN message record holds it."""

from __future__ import annotations

import re
import uuid

import pytest

from contacts.models import AttributeDefinition, AttributeType
from messaging.models import Message
from webforms.models import Ask, Form
from webforms.services import form_create

WORDING = {
    "whatsapp": "Yes, send me order updates and offers on WhatsApp. I can reply STOP at any time.",
    "sms": "Yes, text me about my orders. I can reply STOP at any time.",
    "email": "Yes, email me the monthly newsletter. Every email has an unsubscribe link.",
}


@pytest.fixture(autouse=True)
def forms_settings(settings):
    settings.SEND_MODE = "DRY_RUN"
    # Generous: every test client comes from 127.0.0.1; the rate-limit tests set their own.
    settings.FORMS_SUBMISSIONS_PER_ADDRESS_PER_HOUR = 100_000
    settings.FORMS_EMBED_ORIGINS = []
    return settings


@pytest.fixture
def make_form(db):
    def make(
        *,
        slug: str | None = None,
        double_opt_in: bool = True,
        embed_origins: str = "",
        attributes: list[str] | None = None,
        ask_name: str = Ask.OPTIONAL,
        ask_phone: str = Ask.OPTIONAL,
        ask_email: str = Ask.OPTIONAL,
        wording: dict[str, str] | None = None,
        actor=None,
    ) -> Form:
        wording = WORDING if wording is None else wording
        return form_create(
            slug=slug or f"news-{uuid.uuid4().hex[:8]}",
            name="Newsletter sign-up",
            content={
                "title": "Stay in touch",
                "intro": "Tell us how we may contact you.",
                "ask_name": ask_name,
                "ask_phone": ask_phone,
                "ask_email": ask_email,
                "attributes": attributes or [],
                **{f"consent_{channel}": text for channel, text in wording.items()},
            },
            email_double_opt_in=double_opt_in,
            embed_origins=embed_origins,
            actor=actor,
        )

    return make


@pytest.fixture
def city_attribute(db):
    return AttributeDefinition.objects.create(name="city", label="City", type=AttributeType.TEXT)


def form_token_of(html: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', html).group(1)


def confirmation_link(contact) -> str:
    """The double opt-in link in the confirmation email, read from the DRY_RUN message record."""
    message = Message.objects.get(contact=contact, email_confirmation__isnull=False)
    return re.search(r"https?://\S+/f/confirm/\S+/", message.content).group(0)
