"""WhatsApp templates with header (text, image, document, video) and button (URL suffix, quick-reply
payload) parameters: judged by the gate, stored, and built into SendWhatsAppMessage's ``message`` as
Meta's template components. The provider is botocore's Stubber on the real socialmessaging model."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from messaging.models import MediaFile
from messaging.safety import SafetyRefusal
from messaging.services import OutgoingMedia, media_upload, message_deliver, message_send, send_request_build
from messaging.tests.outbound.conftest import decoded, drain_queue

pytestmark = pytest.mark.django_db

BODY = "Hi {{1}}, our sale starts now."
BUTTONS = {
    "type": "BUTTONS",
    "buttons": [
        {"type": "URL", "text": "Shop", "url": "https://shop.example.org/sale/{{1}}"},
        {"type": "QUICK_REPLY", "text": "Stop promotions"},
        {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+919800000000"},
    ],
}


def _components(header: dict | None, *, buttons: bool = True) -> list[dict]:
    parts = [header] if header else []
    parts.append({"type": "BODY", "text": BODY})
    if buttons:
        parts.append(BUTTONS)
    return parts


def _capture(stub) -> list[dict]:
    payloads: list[dict] = []
    stub.client.meta.events.register_first(
        "provide-client-params.socialmessaging.SendWhatsAppMessage",
        lambda params, **kwargs: payloads.append(decoded(params["message"])),
    )
    return payloads


def _send(**kwargs):
    return message_send(send_request_build(channel="whatsapp", **kwargs), enqueue=False)


def test_a_text_header_and_url_and_quick_reply_buttons_are_sent_as_metas_components(
    make_contact, make_template, live, whatsapp_stub
):
    contact = make_contact(whatsapp=True)
    make_template("sale", BODY, components=_components({"type": "HEADER", "format": "TEXT", "text": "Sale for {{1}}"}))
    message = _send(
        contact_id=contact.pk,
        template_name="sale",
        template_language="en_US",
        template_parameters=["Asha"],
        template_header="Asha",
        template_buttons={"0": "summer-2026", "1": "STOP_PROMO"},
    )
    payloads = _capture(whatsapp_stub)
    whatsapp_stub.expect("send_whatsapp_message", {"messageId": "aws-t1"})

    result = message_deliver(message.pk)

    whatsapp_stub.done()
    assert result.status == "sent"
    assert payloads[0]["template"] == {
        "name": "sale",
        "language": {"code": "en_US"},
        "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "Asha"}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Asha"}]},
            {
                "type": "button",
                "sub_type": "url",
                "index": "0",
                "parameters": [{"type": "text", "text": "summer-2026"}],
            },
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": "1",
                "parameters": [{"type": "payload", "payload": "STOP_PROMO"}],
            },
        ],
    }
    assert message.whatsapp_payload == {
        "template": {"header": "Asha", "buttons": {"0": "summer-2026", "1": "STOP_PROMO"}}
    }


def test_a_named_header_placeholder_carries_its_parameter_name(make_contact, make_template, live, whatsapp_stub):
    contact = make_contact(whatsapp=True)
    make_template(
        "named_sale",
        "Hi {{first_name}}",
        parameter_format="named",
        components=[
            {"type": "HEADER", "format": "TEXT", "text": "For {{shop}}"},
            {"type": "BODY", "text": "Hi {{first_name}}"},
        ],
    )
    message = _send(
        contact_id=contact.pk,
        template_name="named_sale",
        template_language="en_US",
        template_parameters={"first_name": "Asha"},
        template_header="Pune store",
    )
    payloads = _capture(whatsapp_stub)
    whatsapp_stub.expect("send_whatsapp_message", {"messageId": "aws-t2"})

    message_deliver(message.pk)

    assert payloads[0]["template"]["components"][0] == {
        "type": "header",
        "parameters": [{"type": "text", "parameter_name": "shop", "text": "Pune store"}],
    }


@pytest.mark.parametrize(
    ("header_format", "content_type", "filename", "data"),
    [
        ("IMAGE", "image/jpeg", "sale.jpg", b"\xff\xd8\xff jpeg"),
        ("DOCUMENT", "application/pdf", "catalogue.pdf", b"%PDF-1.4 catalogue"),
        ("VIDEO", "video/mp4", "sale.mp4", b"\x00\x00\x00\x18ftypmp42"),
    ],
)
def test_a_media_header_is_uploaded_to_meta_then_sent_by_media_id(
    make_contact, make_template, live, whatsapp_stub, header_format, content_type, filename, data
):
    contact = make_contact(whatsapp=True)
    make_template("media_sale", BODY, components=_components({"type": "HEADER", "format": header_format}))
    media = media_upload(data=data, content_type=content_type, filename=filename)
    message = _send(
        contact_id=contact.pk,
        template_name="media_sale",
        template_language="en_US",
        template_parameters=["Asha"],
        template_buttons={"0": "a"},
        media=media,
    )
    phone = django_settings.WHATSAPP_PHONE_NUMBER_IDS[0]
    payloads = _capture(whatsapp_stub)
    whatsapp_stub.expect(
        "post_whatsapp_message_media",
        {"mediaId": "1479537139650973"},
        {
            "originationPhoneNumberId": phone,
            "sourceS3File": {"bucketName": django_settings.MEDIA_BUCKET, "key": media.s3_key},
        },
    )
    whatsapp_stub.expect("send_whatsapp_message", {"messageId": "aws-t3"})

    result = message_deliver(message.pk)

    whatsapp_stub.done()
    assert result.status == "sent"
    kind = header_format.lower()
    expected = {"id": "1479537139650973", **({"filename": filename} if kind == "document" else {})}
    assert payloads[0]["template"]["components"][0] == {
        "type": "header",
        "parameters": [{"type": kind, kind: expected}],
    }
    assert MediaFile.objects.get(message=message).whatsapp_media_id == "1479537139650973"


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"template_buttons": {"0": "a"}}, "header parameter is empty"),
        ({"template_header": "Asha"}, "URL suffix of button 0"),
        ({"template_header": "Asha", "template_buttons": {"0": "a", "2": "x"}}, "no button taking a parameter"),
        ({"template_header": "Asha\nRao", "template_buttons": {"0": "a"}}, "line break"),
        ({"template_header": "A" * 61, "template_buttons": {"0": "a"}}, "longer than 60"),
    ],
)
def test_the_gate_refuses_header_and_button_parameters_that_do_not_fit(make_contact, make_template, kwargs, reason):
    contact = make_contact(whatsapp=True)
    make_template("sale", BODY, components=_components({"type": "HEADER", "format": "TEXT", "text": "Hi {{1}}"}))

    with pytest.raises(SafetyRefusal) as refused:
        _send(
            contact_id=contact.pk,
            template_name="sale",
            template_language="en_US",
            template_parameters=["Asha"],
            **kwargs,
        )

    assert refused.value.code == "TEMPLATE_INVALID" and reason in refused.value.reason


def test_a_media_header_needs_a_file_of_its_type_and_a_text_template_takes_none(make_contact, make_template):
    contact = make_contact(whatsapp=True)
    make_template("img", BODY, components=_components({"type": "HEADER", "format": "IMAGE"}, buttons=False))
    make_template("plain", BODY)
    pdf = OutgoingMedia(content_type="application/pdf", size=10, filename="a.pdf", s3_key="outgoing/a.pdf")
    cases = [
        ({"template_name": "img"}, "give the image file"),
        ({"template_name": "img", "media": pdf}, "the file given is a document"),
        ({"template_name": "plain", "media": pdf}, "takes no file"),
    ]
    for kwargs, reason in cases:
        with pytest.raises(SafetyRefusal) as refused:
            _send(contact_id=contact.pk, template_language="en_US", template_parameters=["Asha"], **kwargs)
        assert refused.value.code == "TEMPLATE_INVALID" and reason in refused.value.reason


def test_templates_with_buttons_or_headers_we_cannot_fill_are_still_refused(make_contact, make_template):
    contact = make_contact(whatsapp=True)
    make_template(
        "otp",
        BODY,
        components=[{"type": "BODY", "text": BODY}, {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE"}]}],
    )
    make_template("where", BODY, components=[{"type": "HEADER", "format": "LOCATION"}, {"type": "BODY", "text": BODY}])

    for name in ("otp", "where"):
        with pytest.raises(SafetyRefusal) as refused:
            _send(contact_id=contact.pk, template_name=name, template_language="en_US", template_parameters=["A"])
        assert refused.value.code == "TEMPLATE_INVALID" and "cannot be sent from here" in refused.value.reason


def test_the_api_sends_a_template_with_header_and_buttons(make_contact, make_template, client, django_user_model):
    from accounts.services import user_create

    operator = user_create(email="t-components@example.com", role="Operator")
    client.force_login(operator)
    contact = make_contact(whatsapp=True)
    make_template("sale", BODY, components=_components({"type": "HEADER", "format": "TEXT", "text": "Hi {{1}}"}))

    response = client.post(
        "/api/messages/",
        {
            "contactId": str(contact.pk),
            "channel": "whatsapp",
            "templateName": "sale",
            "templateLanguage": "en_US",
            "templateParameters": ["Asha"],
            "templateHeader": "Asha",
            "templateButtons": {"0": "summer"},
        },
        content_type="application/json",
    )

    assert response.status_code == 202, response.content
    from messaging.models import Message

    stored = Message.objects.get(pk=response.json()["messageId"])
    assert stored.whatsapp_payload == {"template": {"header": "Asha", "buttons": {"0": "summer"}}}


@pytest.fixture
def outbound_dlq_drained():
    drain_queue(django_settings.QUEUE_OUTBOUND_DLQ)
    yield
    drain_queue(django_settings.QUEUE_OUTBOUND_DLQ)


def test_a_dlq_replay_keeps_the_header_and_button_parameters(
    make_contact, make_template, live, whatsapp_stub, outbound_dlq_drained
):
    from messaging.outbound.replay import handle_outbound_dlq_payload

    contact = make_contact(whatsapp=True)
    make_template("sale", BODY, components=_components({"type": "HEADER", "format": "TEXT", "text": "Hi {{1}}"}))
    message = _send(
        contact_id=contact.pk,
        template_name="sale",
        template_language="en_US",
        template_parameters=["Asha"],
        template_header="Asha",
        template_buttons={"0": "summer"},
    )
    whatsapp_stub.error("send_whatsapp_message", "ValidationException", 400)
    failed = message_deliver(message.pk)

    replay = handle_outbound_dlq_payload({"messageId": str(failed.pk)})

    assert failed.status == "failed" and replay.status == "queued"
    assert replay.whatsapp_payload == {"template": {"header": "Asha", "buttons": {"0": "summer"}}}
