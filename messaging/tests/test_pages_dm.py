"""The DM pages through Django's test client: the inbox, a conversation, the composer and the gate."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditLog
from contacts.models import Contact
from messaging.models import Direction, Message, MessageStatus, TemplateStatus, WhatsAppTemplate

pytestmark = pytest.mark.django_db


@pytest.fixture
def contact(db):
    return Contact.objects.create(
        name="Asha",
        phone="+919876543210",
        email="asha@example.com",
        opt_in_whatsapp=True,
        opt_in_sms=True,
        opt_in_email=False,
        last_inbound_message_at=timezone.now() - timedelta(hours=1),
    )


@pytest.fixture
def template(db):
    return WhatsAppTemplate.objects.create(
        name="order_update",
        language="en_US",
        category="UTILITY",
        status=TemplateStatus.APPROVED,
        body="Hi {{1}}, your order #{{2}} has shipped.",
        components=[{"type": "BODY", "text": "Hi {{1}}, your order #{{2}} has shipped."}],
    )


def message(contact, direction, minutes_ago, **fields):
    return Message.objects.create(
        contact=contact,
        channel=fields.pop("channel", "whatsapp"),
        direction=direction,
        content=fields.pop("content", "hello"),
        status=fields.pop("status", MessageStatus.RECEIVED if direction == Direction.INBOUND else MessageStatus.SENT),
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
        **fields,
    )


def test_the_inbox_lists_conversations_latest_first_with_unread_marks_and_channels(viewer_client, contact):
    other = Contact.objects.create(name="Ravi", email="ravi@example.com", opt_in_email=True)
    message(contact, Direction.OUTBOUND, 50)
    message(contact, Direction.INBOUND, 40, content="first question")
    message(contact, Direction.INBOUND, 30, content="second question")
    message(other, Direction.OUTBOUND, 60, channel="email", subject="Your invoice", content="")

    html = viewer_client.get("/dm/").content.decode()

    assert html.index("Asha") < html.index("Ravi")
    assert "2 unread" in html
    assert "second question" in html and "Your invoice" in html
    assert "icon-whatsapp" in html and "icon-email" in html


def test_a_conversation_shows_ticks_failure_reasons_and_the_window(viewer_client, contact):
    message(contact, Direction.INBOUND, 50, content="hi there")
    message(contact, Direction.OUTBOUND, 40, content="delivered one", status=MessageStatus.DELIVERED)
    message(contact, Direction.OUTBOUND, 30, content="read one", status=MessageStatus.READ)
    message(
        contact,
        Direction.OUTBOUND,
        20,
        content="failed one",
        status=MessageStatus.FAILED,
        error_code="131026",
        error_details={"message": "Message undeliverable"},
    )

    html = viewer_client.get(f"/dm/{contact.pk}/").content.decode()

    assert html.index("hi there") < html.index("delivered one") < html.index("read one")
    assert "✓✓ delivered" in html and "✓✓ read" in html
    assert "✗ failed" in html and "Message undeliverable (131026)" in html
    assert "free-form until" in html
    assert "can read conversations but not send" in html  # a Viewer is offered no composer
    assert 'data-testid="free-text-form"' not in html


def test_inside_the_window_an_operator_sends_free_text_through_the_gate(operator_client, contact):
    response = operator_client.post(f"/dm/{contact.pk}/send/", {"channel": "whatsapp", "kind": "text", "text": "Hi!"})

    sent = Message.objects.get(direction=Direction.OUTBOUND)
    assert response.status_code == 302
    assert (sent.channel, sent.message_type, sent.content, sent.status) == ("whatsapp", "text", "Hi!", "queued")
    assert sent.requested_by is not None


def test_outside_the_window_the_page_asks_for_a_template_and_the_gate_refuses_free_text(
    operator_client, contact, template
):
    Contact.objects.filter(pk=contact.pk).update(last_inbound_message_at=timezone.now() - timedelta(hours=30))

    page = operator_client.get(f"/dm/{contact.pk}/").content.decode()
    forced = operator_client.post(f"/dm/{contact.pk}/send/", {"channel": "whatsapp", "kind": "text", "text": "Hi!"})

    assert "template required" in page and 'data-testid="free-text-form"' not in page
    assert 'data-testid="template-form"' in page and "order_update (en_US" in page
    assert forced.status_code == 200
    assert "The 24-hour window is closed" in forced.content.decode()
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_a_template_is_sent_with_the_parameters_of_its_fields(operator_client, contact, template):
    Contact.objects.filter(pk=contact.pk).update(last_inbound_message_at=None)

    fields = operator_client.get(f"/dm/{contact.pk}/", {"channel": "whatsapp", "template": template.pk})
    response = operator_client.post(
        f"/dm/{contact.pk}/send/",
        {"channel": "whatsapp", "kind": "template", "template": template.pk, "param_0": "Asha", "param_1": "1042"},
    )

    assert fields.content.decode().count('data-testid="template-param"') == 2
    assert response.status_code == 302
    sent = Message.objects.get(direction=Direction.OUTBOUND)
    assert (sent.template_name, sent.template_parameters) == ("order_update", ["Asha", "1042"])
    assert sent.content == "Hi Asha, your order #1042 has shipped."


def test_every_refusal_is_shown_in_plain_words(operator_client, contact, template):
    no_email = operator_client.post(f"/dm/{contact.pk}/send/", {"channel": "email", "subject": "S", "text": "T"})
    missing = operator_client.post(
        f"/dm/{contact.pk}/send/", {"channel": "whatsapp", "kind": "template", "template": template.pk, "param_0": "x"}
    )
    too_long = operator_client.post(f"/dm/{contact.pk}/send/", {"channel": "sms", "text": "x" * 1601})

    assert "has not opted in to this channel, so nothing was sent" in no_email.content.decode()
    assert "This template cannot be sent." in missing.content.decode()
    assert "The message cannot be sent as written." in too_long.content.decode()
    assert not Message.objects.exists()


def test_the_sms_counter_counts_segments_by_the_channel_rule(viewer_client):
    gsm = viewer_client.get("/dm/segments/", {"text": "a" * 161}).content.decode()
    ucs = viewer_client.get("/dm/segments/", {"text": "नमस्ते"}).content.decode()

    assert "161 characters · 2 segments (GSM-7)" in gsm
    assert "1 segment (UCS-2)" in ucs


def test_a_viewer_who_forces_a_send_is_refused_and_audited(viewer_client, contact):
    response = viewer_client.post(f"/dm/{contact.pk}/send/", {"channel": "whatsapp", "kind": "text", "text": "Hi"})

    assert response.status_code == 403
    assert not Message.objects.exists()
    assert AuditLog.objects.filter(action="forbidden", resource_type="dm:send").exists()


def test_the_thread_fragment_polls_new_messages(viewer_client, contact):
    message(contact, Direction.INBOUND, 1, content="just arrived")

    response = viewer_client.get(f"/dm/{contact.pk}/thread/", headers={"HX-Request": "true"})

    html = response.content.decode()
    assert "<html" not in html and 'id="thread"' in html and "just arrived" in html


def test_a_template_with_an_image_header_and_buttons_gets_their_fields_and_is_sent_with_them(
    operator_client, contact, reset_aws
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    rich = WhatsAppTemplate.objects.create(
        name="menu_offer",
        language="en_US",
        status=TemplateStatus.APPROVED,
        body="Hi {{1}}, today's menu.",
        parameter_format="positional",
        components=[
            {"type": "HEADER", "format": "IMAGE"},
            {"type": "BODY", "text": "Hi {{1}}, today's menu."},
            {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Order", "url": "https://x.example/{{1}}"},
                                            {"type": "QUICK_REPLY", "text": "Stop"}]},
        ],
    )  # fmt: skip

    fields = operator_client.get(f"/dm/{contact.pk}/", {"channel": "whatsapp", "template": rich.pk}).content.decode()
    response = operator_client.post(
        f"/dm/{contact.pk}/send/",
        {
            "channel": "whatsapp",
            "kind": "template",
            "template": rich.pk,
            "param_0": "Asha",
            "button_0": "order-42",
            "button_1": "",
            "media": SimpleUploadedFile("menu.png", b"\x89PNGmenu", content_type="image/png"),
        },
    )

    assert 'data-testid="template-media"' in fields and fields.count('data-testid="template-button"') == 2
    assert response.status_code == 302
    sent = Message.objects.get(direction=Direction.OUTBOUND)
    assert sent.whatsapp_payload == {"template": {"buttons": {"0": "order-42"}}}
    assert sent.media.get().filename == "menu.png"
