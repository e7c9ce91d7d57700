"""message_send stores and enqueues; message_deliver calls each provider exactly as documented."""

from __future__ import annotations

import base64
import json
import logging
from email.utils import parseaddr

import pytest
from botocore.stub import ANY
from django.conf import settings as django_settings

from messaging.models import MediaFile, Message, MessageStatus, MessageUsage
from messaging.safety import SafetyRefusal
from messaging.services import OutgoingMedia, media_upload, message_deliver, message_send, send_request_build
from messaging.tests.outbound.conftest import decoded, drain_queue, sent_emails
from wecare import aws

pytestmark = pytest.mark.django_db


def _queued(**kwargs) -> Message:
    return message_send(send_request_build(**kwargs), enqueue=False)


def test_a_send_is_stored_queued_and_enqueued_only_when_the_transaction_commits(
    make_contact, django_capture_on_commit_callbacks
):
    contact = make_contact(sms=True)

    with django_capture_on_commit_callbacks() as callbacks:
        message = message_send(send_request_build(contact_id=contact.pk, channel="sms", text="Your code is 1234"))

    assert message.status == MessageStatus.QUEUED
    assert message.direction == "outbound" and message.message_type == "text"
    assert message.segments == 1
    assert len(callbacks) == 1  # the task is handed to the queue after commit, never before


def test_the_queued_task_lands_on_the_outbound_queue(make_contact, django_capture_on_commit_callbacks):
    contact = make_contact(sms=True)
    drain_queue(django_settings.QUEUE_OUTBOUND)

    with django_capture_on_commit_callbacks(execute=True):
        message = message_send(send_request_build(contact_id=contact.pk, channel="sms", text="Hi"))

    [raw] = drain_queue(django_settings.QUEUE_OUTBOUND)
    envelope = json.loads(base64.b64decode(raw))  # kombu's SQS envelope
    args = json.loads(base64.b64decode(envelope["body"]))[0]
    assert envelope["headers"]["task"] == "messaging.tasks.outbound.deliver_message"
    assert args == [str(message.pk)]


def test_a_refused_send_stores_nothing(make_contact):
    contact = make_contact(sms=False)

    with pytest.raises(SafetyRefusal):
        message_send(send_request_build(contact_id=contact.pk, channel="sms", text="Hi"))

    assert Message.objects.count() == 0


def _capture_whatsapp_payloads(stub) -> list[dict]:
    payloads: list[dict] = []

    def grab(params, **kwargs):
        payloads.append(decoded(params["message"]))

    stub.client.meta.events.register_first("provide-client-params.socialmessaging.SendWhatsAppMessage", grab)
    return payloads


def test_whatsapp_text_is_sent_with_the_allowlisted_number_api_version_and_our_id(
    make_contact, live, whatsapp_stub, provider_calls
):
    contact = make_contact(whatsapp=True, window=True)
    message = _queued(contact_id=contact.pk, channel="whatsapp", text="Your table is booked.")
    phone = django_settings.WHATSAPP_PHONE_NUMBER_IDS[0]
    payloads = _capture_whatsapp_payloads(whatsapp_stub)
    whatsapp_stub.expect(
        "send_whatsapp_message",
        {"messageId": "aws-msg-1"},
        {"originationPhoneNumberId": phone, "message": ANY, "metaApiVersion": "v20.0"},
    )

    result = message_deliver(message.pk)

    whatsapp_stub.done()
    assert provider_calls == [("socialmessaging", "SendWhatsAppMessage")]
    assert result.status == MessageStatus.SENT and result.dry_run is False
    assert result.provider_message_id == "aws-msg-1"
    assert result.origination_phone_number_id == phone
    assert result.attempts == 1 and result.sent_at is not None
    assert payloads == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": contact.phone,
            "type": "text",
            "text": {"preview_url": False, "body": "Your table is booked."},
            "biz_opaque_callback_data": str(message.pk),
        }
    ]


def test_a_positional_template_is_sent_with_its_parameters_and_counted_as_business_initiated(
    make_contact, make_template, live, whatsapp_stub
):
    contact = make_contact(whatsapp=True, window=False)
    make_template()
    message = _queued(
        contact_id=contact.pk,
        channel="whatsapp",
        template_name="order_update",
        template_language="en_US",
        template_parameters=["Asha", "1042"],
    )
    payloads = _capture_whatsapp_payloads(whatsapp_stub)
    whatsapp_stub.expect("send_whatsapp_message", {"messageId": "aws-2"})

    message_deliver(message.pk)

    assert payloads[0]["type"] == "template"
    assert payloads[0]["template"] == {
        "name": "order_update",
        "language": {"code": "en_US"},
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Asha"}, {"type": "text", "text": "1042"}]}
        ],
    }
    assert payloads[0]["biz_opaque_callback_data"] == str(message.pk)
    message.refresh_from_db()
    assert message.content == "Hi Asha, your order #1042 has shipped."
    usage = MessageUsage.objects.get()
    assert (usage.kind, usage.template_name, usage.category, usage.count, usage.business_initiated) == (
        "template",
        "order_update",
        "UTILITY",
        1,
        1,
    )


def test_a_named_template_sends_parameter_names(make_contact, make_template, live, whatsapp_stub):
    contact = make_contact(whatsapp=True, window=True)
    make_template("named", "Hi {{first_name}}", parameter_format="named")
    message = _queued(
        contact_id=contact.pk,
        channel="whatsapp",
        template_name="named",
        template_language="en_US",
        template_parameters={"first_name": "Asha"},
    )
    payloads = _capture_whatsapp_payloads(whatsapp_stub)
    whatsapp_stub.expect("send_whatsapp_message", {"messageId": "aws-3"})

    message_deliver(message.pk)

    assert payloads[0]["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Asha"}]}
    ]
    assert MessageUsage.objects.get().business_initiated == 0  # inside the window


def test_media_goes_to_s3_then_to_meta_then_out_by_media_id_which_is_reused(make_contact, live, whatsapp_stub):
    contact = make_contact(whatsapp=True, window=True)
    media = media_upload(data=b"%PDF-1.4 invoice", content_type="application/pdf", filename="invoice 1042.pdf")
    first = _queued(contact_id=contact.pk, channel="whatsapp", media=media, text="Your invoice")
    second = _queued(contact_id=contact.pk, channel="whatsapp", media=media)
    phone = django_settings.WHATSAPP_PHONE_NUMBER_IDS[0]
    payloads = _capture_whatsapp_payloads(whatsapp_stub)
    whatsapp_stub.expect(
        "post_whatsapp_message_media",
        {"mediaId": "1479537139650973"},
        {
            "originationPhoneNumberId": phone,
            "sourceS3File": {"bucketName": django_settings.MEDIA_BUCKET, "key": media.s3_key},
        },
    )
    whatsapp_stub.expect("send_whatsapp_message", {"messageId": "aws-4"})
    whatsapp_stub.expect("send_whatsapp_message", {"messageId": "aws-5"})  # no second upload

    message_deliver(first.pk)
    message_deliver(second.pk)

    whatsapp_stub.done()
    assert media.s3_key.startswith(django_settings.MEDIA_OUTGOING_PREFIX)
    body = aws.client("s3").get_object(Bucket=django_settings.MEDIA_BUCKET, Key=media.s3_key)["Body"].read()
    assert body == b"%PDF-1.4 invoice"
    assert payloads[0]["type"] == "document"
    assert payloads[0]["document"] == {
        "id": "1479537139650973",
        "caption": "Your invoice",
        "filename": "invoice_1042.pdf",
    }
    assert payloads[1]["document"]["id"] == "1479537139650973"
    row = MediaFile.objects.get(message=first)
    assert row.whatsapp_media_id == "1479537139650973" and row.size == len(b"%PDF-1.4 invoice")


def test_an_uploaded_file_is_stored_under_the_outgoing_prefix_by_message_send(make_contact):
    contact = make_contact(whatsapp=True, window=True)

    message = _queued(
        contact_id=contact.pk,
        channel="whatsapp",
        media=OutgoingMedia(content_type="image/png", size=4, filename="../../etc/passwd.png", data=b"\x89PNG"),
    )

    media = message.media.get()
    assert message.message_type == "image"
    assert media.s3_key.startswith(django_settings.MEDIA_OUTGOING_PREFIX) and ".." not in media.s3_key
    assert media.filename == "passwd.png"


def test_sms_goes_out_through_the_pool_and_stores_its_segments(make_contact, live, sms_stub):
    contact = make_contact(sms=True)
    text = "It’s ready. " * 10  # the curly apostrophe is not GSM-7: 120 UCS-2 characters, 2 parts
    message = _queued(contact_id=contact.pk, channel="sms", text=text)
    sms_stub.expect(
        "send_text_message",
        {"MessageId": "sms-1"},
        {
            "DestinationPhoneNumber": contact.phone,
            "OriginationIdentity": django_settings.SMS_POOL_ID,
            "MessageBody": text,
            "MessageType": "TRANSACTIONAL",
            "ConfigurationSetName": django_settings.SMS_CONFIGURATION_SET,  # its receipts come back by SNS
        },
    )

    result = message_deliver(message.pk)

    sms_stub.done()
    assert result.status == "sent" and result.provider_message_id == "sms-1"
    assert result.segments == 2


def test_email_goes_out_through_ses_from_the_platform_sender_with_text_and_html(make_contact, live, reset_aws):
    contact = make_contact(email_opt_in=True)
    message = _queued(
        contact_id=contact.pk,
        channel="email",
        subject="Your booking",
        text="See you at 19:30.",
        html="<p>See you at <b>19:30</b>.<script>x()</script></p>",
    )

    result = message_deliver(message.pk)

    assert result.status == "sent" and result.provider_message_id
    assert result.html == "<p>See you at <b>19:30</b>.</p>"
    [email] = sent_emails()
    # formataddr quotes the dot in the name (RFC 5322); readers show WECARE.DIGITAL <one@wecare.digital>
    assert parseaddr(email["source"]) == ("WECARE.DIGITAL", "one@wecare.digital")
    assert email["destinations"]["ToAddresses"] == [contact.email]
    assert email["subject"] == "Your booking"
    # moto keeps the HTML part when there is one; every email ends with the visible unsubscribe link.
    assert email["body"].startswith("<p>See you at <b>19:30</b>.</p>")
    assert f"{django_settings.PUBLIC_BASE_URL}/unsubscribe/" in email["body"]


def test_dry_run_logs_the_full_request_calls_nothing_and_marks_the_message(
    make_contact, whatsapp_stub, provider_calls, caplog
):
    contact = make_contact(whatsapp=True, window=True)
    message = _queued(contact_id=contact.pk, channel="whatsapp", text="Hello")

    with caplog.at_level(logging.INFO, logger="messaging.services"):
        result = message_deliver(message.pk)

    assert provider_calls == []
    assert result.status == "sent" and result.dry_run is True and result.provider_message_id == ""
    line = next(r.getMessage() for r in caplog.records if "DRY_RUN" in r.getMessage())
    logged = json.loads(line.split("would call ", 1)[1])
    assert logged["operation"] == "SendWhatsAppMessage"
    assert logged["params"]["metaApiVersion"] == "v20.0"
    assert logged["params"]["message"]["text"]["body"] == "[5 chars]"  # bodies never reach a log (wecare.logs)
    assert MessageUsage.objects.get().dry_run is True


def test_dry_run_media_is_stored_in_s3_but_not_uploaded_to_meta(make_contact, provider_calls):
    contact = make_contact(whatsapp=True, window=True)
    message = _queued(
        contact_id=contact.pk,
        channel="whatsapp",
        media=OutgoingMedia(content_type="image/jpeg", size=3, filename="a.jpg", data=b"abc"),
    )

    result = message_deliver(message.pk)

    assert provider_calls == [] and result.dry_run
    assert result.media.get().whatsapp_media_id == ""


def test_a_message_is_delivered_once_however_often_the_task_runs(make_contact, live, sms_stub):
    contact = make_contact(sms=True)
    message = _queued(contact_id=contact.pk, channel="sms", text="Hi")
    sms_stub.expect("send_text_message", {"MessageId": "sms-once"})

    message_deliver(message.pk)
    again = message_deliver(message.pk)

    sms_stub.done()
    assert again.attempts == 1 and again.provider_message_id == "sms-once"


def test_a_message_claimed_by_another_worker_is_left_alone(make_contact, provider_calls):
    from datetime import timedelta

    from django.utils import timezone

    contact = make_contact(sms=True)
    message = _queued(contact_id=contact.pk, channel="sms", text="Hi")
    Message.objects.filter(pk=message.pk).update(locked_until=timezone.now() + timedelta(seconds=60))

    result = message_deliver(message.pk)

    assert result.status == "queued" and provider_calls == []


def test_a_status_event_that_arrived_first_is_not_overwritten_by_sent(make_contact, live, sms_stub):
    contact = make_contact(sms=True)
    message = _queued(contact_id=contact.pk, channel="sms", text="Hi")

    def delivered_meanwhile(**kwargs):
        Message.objects.filter(pk=message.pk).update(status=MessageStatus.DELIVERED)

    sms_stub.client.meta.events.register("before-parameter-build.*.*", delivered_meanwhile)
    sms_stub.expect("send_text_message", {"MessageId": "sms-2"})

    result = message_deliver(message.pk)

    assert result.status == MessageStatus.DELIVERED
    assert result.provider_message_id == "sms-2"


def test_consent_withdrawn_after_queueing_fails_the_message_at_delivery_without_a_provider_call(
    make_contact, live, provider_calls
):
    contact = make_contact(whatsapp=True, window=True)
    message = _queued(contact_id=contact.pk, channel="whatsapp", text="Hello")
    contact.opt_in_whatsapp = False
    contact.save()

    result = message_deliver(message.pk)

    assert provider_calls == []
    assert result.status == "failed" and result.error_code == "OPT_IN_REQUIRED"
    assert result.error_details["stage"] == "delivery"


def test_a_reaction_to_an_inbound_message_goes_out_from_the_number_it_came_to(
    make_contact, live, whatsapp_stub, settings
):
    from messaging.services import whatsapp_mark_as_read, whatsapp_react

    contact = make_contact(whatsapp=True, window=True)
    number = settings.WHATSAPP_PHONE_NUMBER_IDS[1]
    inbound = Message.objects.create(
        contact=contact,
        channel="whatsapp",
        direction="inbound",
        status="received",
        whatsapp_message_id="wamid.IN1",
        origination_phone_number_id=number,
    )
    payloads = _capture_whatsapp_payloads(whatsapp_stub)
    whatsapp_stub.expect("send_whatsapp_message", {"messageId": "r-1"}, {
        "originationPhoneNumberId": number, "message": ANY, "metaApiVersion": "v20.0"})  # fmt: skip
    whatsapp_stub.expect("send_whatsapp_message", {"messageId": "read-1"})

    reaction = whatsapp_react(message=inbound, emoji="\U0001f44d")
    message_deliver(reaction.pk)
    whatsapp_mark_as_read(message=inbound)

    whatsapp_stub.done()
    assert payloads[0]["type"] == "reaction"
    assert payloads[0]["reaction"] == {"message_id": "wamid.IN1", "emoji": "\U0001f44d"}
    assert payloads[1] == {"messaging_product": "whatsapp", "message_id": "wamid.IN1", "status": "read"}
