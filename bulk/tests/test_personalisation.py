"""Personalised bulk jobs: placeholders filled per recipient by the gate, refused per recipient when a
required one has no value (PLACEHOLDER_MISSING in the pre-flight breakdown), three rendered samples
before confirmation; templates with header and button parameters and media messages in bulk."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from bulk import execution
from bulk.errors import BulkInputError
from bulk.models import BulkJob, BulkJobChunk, RecipientStatus
from bulk.services import BulkMessage, bulk_job_confirm, bulk_job_create
from contacts.models import AttributeDefinition, Contact
from messaging.models import MediaFile, Message, TemplateStatus, WhatsAppTemplate
from messaging.outbound.request import OutgoingMedia

# The chunk's sender threads use their own database connections: real transactions.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_limits(settings):
    settings.RATE_LIMIT_WHATSAPP_PER_PHONE = 10_000.0
    settings.RATE_LIMIT_EUM_SOCIAL_ACCOUNT = 10_000.0


@pytest.fixture
def city(db):
    return AttributeDefinition.objects.create(name="city", type="text")


def _with_attributes(contact: Contact, **attributes) -> Contact:
    Contact.objects.filter(pk=contact.pk).update(attributes=attributes)
    contact.refresh_from_db()
    return contact


def _run(job: BulkJob) -> None:
    if job.status == "AWAITING_CONFIRMATION":
        job = bulk_job_confirm(job_id=job.pk, user=None, count=job.preflight["willSend"])
    for chunk in BulkJobChunk.objects.filter(job=job).order_by("sequence"):
        execution.chunk_process(chunk.pk)


def test_a_recipient_without_a_required_value_is_refused_and_counted_in_the_breakdown(
    operator, make_contact, city, reset_aws
):
    pune = _with_attributes(make_contact(name="Asha Rao", opt_ins={"sms": True}), city="Pune")
    nowhere = make_contact(name="Ravi", opt_ins={"sms": True})
    no_opt_in = make_contact(name="Meera", opt_ins={})

    job = bulk_job_create(
        user=operator,
        channel="sms",
        message=BulkMessage(content="Hi {{first_name}}, our {{attr.city}} clinic opens Monday."),
        contact_ids=[str(pune.pk), str(nowhere.pk), str(no_opt_in.pk)],
    )

    rows = {row.contact_id: row for row in job.recipients.all()}
    assert rows[pune.pk].status == RecipientStatus.PENDING
    assert (rows[nowhere.pk].status, rows[nowhere.pk].error_code) == (RecipientStatus.SKIPPED, "PLACEHOLDER_MISSING")
    assert "{{attr.city}}" in rows[nowhere.pk].error_details
    assert job.preflight["byReason"] == {"OPT_IN_REQUIRED": 1, "PLACEHOLDER_MISSING": 1}
    assert job.preflight["willSend"] == 1


def test_a_fallback_lets_everyone_receive_it_and_each_message_is_rendered_for_its_recipient(
    operator, make_contact, city, reset_aws
):
    pune = _with_attributes(make_contact(name="Asha Rao", opt_ins={"sms": True}), city="Pune")
    nowhere = make_contact(name="Ravi", opt_ins={"sms": True})

    job = bulk_job_create(
        user=operator,
        channel="sms",
        message=BulkMessage(content="Hi {{first_name}}, see you in {{attr.city|town}}."),
        contact_ids=[str(pune.pk), str(nowhere.pk)],
    )
    _run(job)

    sent = {m.contact_id: m.content for m in Message.objects.filter(contact__in=[pune, nowhere])}
    assert sent == {pune.pk: "Hi Asha, see you in Pune.", nowhere.pk: "Hi Ravi, see you in town."}


def test_the_preflight_shows_three_recipients_rendered_messages(operator, make_contact, city, reset_aws):
    contacts = [
        _with_attributes(make_contact(name=name, email=f"{name.lower()}@example.org", opt_ins={"email": True}), city=c)
        for name, c in [("Asha", "Pune"), ("Ravi", "Goa"), ("Meera", "Agra"), ("Kabir", "Kochi")]
    ]

    job = bulk_job_create(
        user=operator,
        channel="email",
        message=BulkMessage(
            subject="{{name}}, news from {{attr.city}}", content="Dear {{name}}", html="<p>Hello {{attr.city}}</p>"
        ),
        contact_ids=[str(c.pk) for c in contacts],
    )

    samples = job.preflight["samples"]
    assert len(samples) == 3
    by_name = {s["name"]: s for s in samples}
    first = by_name[samples[0]["name"]]
    city_of = {c.name: c.attributes["city"] for c in contacts}
    assert first["subject"] == f"{first['name']}, news from {city_of[first['name']]}"
    assert first["text"] == f"Dear {first['name']}"
    assert first["html"] == f"<p>Hello {city_of[first['name']]}</p>"
    assert first["address"].endswith("@example.org")


def test_a_placeholder_that_is_not_ours_or_an_undeclared_attribute_is_refused_before_anything_is_stored(
    operator, make_contact, reset_aws
):
    contact = make_contact(opt_ins={"sms": True})
    for text, words in [("Hi {{1}}", "unknown placeholder"), ("Hi {{attr.citty}}", "not declared): citty")]:
        with pytest.raises(BulkInputError) as refused:
            bulk_job_create(
                user=operator, channel="sms", message=BulkMessage(content=text), contact_ids=[str(contact.pk)]
            )
        assert refused.value.code == "CONTENT_INVALID" and words in str(refused.value)
    assert not BulkJob.objects.exists()


@pytest.fixture
def promo_template(db):
    body = "Hi {{1}}, the {{2}} sale is on."
    return WhatsAppTemplate.objects.create(
        name="promo_header_buttons",
        language="en_US",
        category="MARKETING",
        status=TemplateStatus.APPROVED,
        body=body,
        body_parameters=["1", "2"],
        parameter_format="positional",
        components=[
            {"type": "HEADER", "format": "TEXT", "text": "For {{1}}"},
            {"type": "BODY", "text": body},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "URL", "text": "Shop", "url": "https://shop.example.org/{{1}}"},
                    {"type": "QUICK_REPLY", "text": "Stop"},
                ],
            },
        ],
    )


def test_a_bulk_template_with_header_and_buttons_is_rendered_per_recipient(
    operator, make_contact, city, promo_template, reset_aws
):
    asha = _with_attributes(make_contact(name="Asha", opt_ins={"whatsapp": True}), city="Pune")
    ravi = _with_attributes(make_contact(name="Ravi", opt_ins={"whatsapp": True}), city="Goa")

    job = bulk_job_create(
        user=operator,
        channel="whatsapp",
        message=BulkMessage(
            template_name=promo_template.name,
            template_language="en_US",
            template_parameters=["{{first_name}}", "{{attr.city}}"],
            template_header="{{attr.city}}",
            template_buttons={"0": "{{attr.city}}", "1": "STOP"},
        ),
        contact_ids=[str(asha.pk), str(ravi.pk)],
    )
    _run(job)

    stored = {m.contact_id: m for m in Message.objects.filter(contact__in=[asha, ravi])}
    assert stored[asha.pk].content == "Hi Asha, the Pune sale is on."
    assert stored[asha.pk].template_parameters == ["Asha", "Pune"]
    assert stored[asha.pk].whatsapp_payload == {"template": {"header": "Pune", "buttons": {"0": "Pune", "1": "STOP"}}}
    assert stored[ravi.pk].whatsapp_payload["template"]["header"] == "Goa"
    assert job.preflight["samples"][0]["templateButtons"]["1"] == "STOP"


def test_a_bulk_template_missing_its_header_parameter_is_refused_for_the_job(
    operator, make_contact, promo_template, reset_aws
):
    contact = make_contact(opt_ins={"whatsapp": True})
    with pytest.raises(BulkInputError) as refused:
        bulk_job_create(
            user=operator,
            channel="whatsapp",
            message=BulkMessage(
                template_name=promo_template.name, template_language="en_US", template_parameters=["a", "b"]
            ),
            contact_ids=[str(contact.pk)],
        )
    assert refused.value.code == "TEMPLATE_INVALID"


def test_a_bulk_image_is_stored_once_and_every_recipients_message_points_at_it(operator, make_contacts, reset_aws):
    contacts = make_contacts(3, in_window=True)

    job = bulk_job_create(
        user=operator,
        channel="whatsapp",
        message=BulkMessage(
            content="New menu for {{first_name}}",
            media=OutgoingMedia(content_type="image/png", size=8, filename="menu.png", data=b"\x89PNG1234"),
        ),
        contact_ids=[str(c.pk) for c in contacts],
    )
    _run(job)

    job.refresh_from_db()
    assert job.message_type == "image" and job.media_s3_key and job.sent_count == 3
    files = MediaFile.objects.filter(message__contact__in=contacts)
    assert files.count() == 3 and {f.s3_key for f in files} == {job.media_s3_key}
    captions = sorted(Message.objects.filter(contact__in=contacts).values_list("content", flat=True))
    assert captions == sorted(f"New menu for {c.name.split()[0]}" for c in contacts)


def test_bulk_media_must_be_an_image_video_or_document_on_whatsapp(operator, make_contacts, reset_aws):
    contacts = make_contacts(1)
    with pytest.raises(BulkInputError, match="is none of them"):
        bulk_job_create(
            user=operator,
            channel="whatsapp",
            message=BulkMessage(media=OutgoingMedia(content_type="audio/ogg", size=3, filename="a.ogg", data=b"abc")),
            contact_ids=[str(contacts[0].pk)],
        )
    with pytest.raises(BulkInputError, match="Only WhatsApp"):
        bulk_job_create(
            user=operator,
            channel="sms",
            message=BulkMessage(
                content="x", media=OutgoingMedia(content_type="image/png", size=3, filename="a.png", data=b"abc")
            ),
            contact_ids=[str(contacts[0].pk)],
        )


PHONE_A = "phone-number-id-" + "d" * 32


@pytest.fixture
def fake(monkeypatch, settings):
    """LIVE sends to the local fake of EUM Social, which records every call."""
    from localdev.fake_socialmessaging import FakeSocialMessaging
    from wecare import aws

    with FakeSocialMessaging(latency=0.001) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SOCIALMESSAGING", server.url)
        aws.reset_clients()
        settings.SEND_MODE = "LIVE"
        settings.WHATSAPP_PHONE_NUMBER_IDS = [PHONE_A]
        settings.RATE_LIMIT_WHATSAPP_MEDIA = 1000.0
        yield server
    monkeypatch.undo()
    aws.reset_clients()


def test_a_bulk_document_is_uploaded_to_meta_once_and_its_media_id_reused_across_chunks(
    operator, make_contacts, fake, reset_aws
):
    contacts = make_contacts(150, in_window=True)

    job = bulk_job_create(
        user=operator,
        channel="whatsapp",
        message=BulkMessage(
            content="Your statement, {{first_name}}",
            origination_phone_number_id=PHONE_A,
            media=OutgoingMedia(content_type="application/pdf", size=9, filename="statement.pdf", data=b"%PDF-1.4x"),
        ),
        contact_ids=[str(c.pk) for c in contacts],
    )
    _run(job)

    uploads = [call for call in fake.state.calls if call.operation == "PostWhatsAppMessageMedia"]
    sends = [call.message for call in fake.state.calls if call.operation == "SendWhatsAppMessage"]
    assert len(uploads) == 1 and BulkJobChunk.objects.filter(job=job).count() == 2
    assert uploads[0].params["sourceS3File"]["key"] == BulkJob.objects.get(pk=job.pk).media_s3_key
    assert len(sends) == 150
    media_id = BulkJob.objects.get(pk=job.pk).whatsapp_media_ids[PHONE_A]["id"]
    assert {send["document"]["id"] for send in sends} == {media_id}
    assert {send["document"]["filename"] for send in sends} == {"statement.pdf"}
    first_names = {c.name.split()[0] for c in contacts}
    assert {send["document"]["caption"].removeprefix("Your statement, ") for send in sends} == first_names


def test_a_live_bulk_template_sends_header_and_button_components_per_recipient(
    operator, make_contact, city, promo_template, fake, reset_aws
):
    asha = _with_attributes(make_contact(name="Asha", opt_ins={"whatsapp": True}), city="Pune")

    job = bulk_job_create(
        user=operator,
        channel="whatsapp",
        message=BulkMessage(
            template_name=promo_template.name,
            template_language="en_US",
            template_parameters=["{{first_name}}", "{{attr.city}}"],
            template_header="{{attr.city}}",
            template_buttons={"0": "sale/{{attr.city}}", "1": "STOP"},
        ),
        contact_ids=[str(asha.pk)],
    )
    _run(job)

    [send] = [call.message for call in fake.state.calls if call.operation == "SendWhatsAppMessage"]
    assert send["template"]["components"] == [
        {"type": "header", "parameters": [{"type": "text", "text": "Pune"}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Asha"}, {"type": "text", "text": "Pune"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "sale/Pune"}]},
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "1",
            "parameters": [{"type": "payload", "payload": "STOP"}],
        },
    ]


def test_the_api_takes_a_media_file_header_and_buttons_and_shows_the_samples(
    operator, api_client, make_contacts, city, promo_template, reset_aws
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from wecare import aws

    contacts = make_contacts(2, in_window=True)
    upload = SimpleUploadedFile("menu.jpg", b"\xff\xd8\xffmenu", content_type="image/jpeg")

    media_job = api_client(operator).post(
        "/api/bulk/jobs/",
        {"channel": "whatsapp", "text": "Menu for {{first_name}}", "media": upload,
         "contactIds": json.dumps([str(c.pk) for c in contacts])},
        format="multipart",
    )  # fmt: skip
    template_job = api_client(operator).post(
        "/api/bulk/jobs/",
        {
            "channel": "whatsapp",
            "templateName": promo_template.name,
            "templateLanguage": "en_US",
            "templateParameters": ["{{first_name}}", "{{attr.city|town}}"],
            "templateHeader": "{{first_name}}",
            "templateButtons": {"0": "x/{{first_name}}"},
            "contactIds": [str(contacts[0].pk)],
        },
        format="json",
    )

    assert media_job.status_code == 201, media_job.json()
    body = media_job.json()
    assert body["messageType"] == "image"
    assert body["media"] == {"filename": "menu.jpg", "contentType": "image/jpeg", "size": 7}
    key = BulkJob.objects.get(pk=body["jobId"]).media_s3_key
    stored = aws.client("s3").get_object(Bucket=settings.MEDIA_BUCKET, Key=key)["Body"].read()
    assert stored == b"\xff\xd8\xffmenu"
    assert {s["text"] for s in body["preflight"]["samples"]} == {f"Menu for {c.name.split()[0]}" for c in contacts}
    assert template_job.status_code == 201, template_job.content
    first = contacts[0].name.split()[0]
    sample = template_job.json()["preflight"]["samples"][0]
    assert (sample["templateHeader"], sample["templateButtons"]) == (first, {"0": f"x/{first}"})
    assert sample["text"] == f"Hi {first}, the town sale is on."


def test_meta_refusing_the_bulk_file_fails_its_recipients_without_sending(operator, make_contacts, fake, reset_aws):
    contacts = make_contacts(3, in_window=True)
    fake.fail_next("InvalidParametersException", 400, operation="PostWhatsAppMessageMedia")

    job = bulk_job_create(
        user=operator,
        channel="whatsapp",
        message=BulkMessage(
            origination_phone_number_id=PHONE_A,
            media=OutgoingMedia(content_type="video/mp4", size=4, filename="clip.mp4", data=b"mp4!"),
        ),
        contact_ids=[str(c.pk) for c in contacts],
    )
    _run(job)

    job.refresh_from_db()
    assert fake.calls("SendWhatsAppMessage") == []
    assert job.failed_count == 3 and job.status == "COMPLETED"
    assert set(job.recipients.values_list("error_code", flat=True)) == {"InvalidParametersException"}


def test_the_wizard_preview_renders_three_recipients_and_stores_nothing(
    operator, make_contact, city, client, reset_aws
):
    for name, town in [("Asha", "Pune"), ("Ravi", "Goa"), ("Meera", "Agra"), ("Kabir", "Kochi")]:
        _with_attributes(make_contact(name=name, opt_ins={"sms": True}), city=town)
    make_contact(name="Nowhere", opt_ins={"sms": True})
    client.force_login(operator)

    response = client.post(
        "/bulk/new/preview/",
        {"channel": "sms", "source": "filter", "search": "", "text": "Hi {{name}} of {{attr.city}}"},
    )
    bad = client.post("/bulk/new/preview/", {"channel": "sms", "source": "filter", "text": "Hi {{1}}"})

    html = response.content.decode()
    assert response.status_code == 200 and html.count('data-testid="wizard-sample"') == 3
    assert "Nothing was stored or sent" in html and "<html" not in html
    assert "unknown placeholder" in bad.content.decode()
    assert not BulkJob.objects.exists() and not Message.objects.exists()


def test_a_viewer_cannot_use_the_wizard_preview(viewer, client, reset_aws):
    client.force_login(viewer)

    assert client.post("/bulk/new/preview/", {"channel": "sms", "text": "x"}).status_code == 403


def test_a_recipient_whose_values_make_the_message_too_long_is_skipped_not_the_whole_job(
    operator, make_contact, city, reset_aws
):
    fine = _with_attributes(make_contact(name="Asha", opt_ins={"sms": True}), city="Pune")
    huge = _with_attributes(make_contact(name="Ravi", opt_ins={"sms": True}), city="P" * 1600)

    job = bulk_job_create(
        user=operator,
        channel="sms",
        message=BulkMessage(content="Hi {{first_name}} of {{attr.city}}"),
        contact_ids=[str(fine.pk), str(huge.pk)],
    )

    rows = {row.contact_id: row for row in job.recipients.all()}
    assert rows[fine.pk].status == RecipientStatus.PENDING
    assert (rows[huge.pk].status, rows[huge.pk].error_code) == (RecipientStatus.SKIPPED, "PLACEHOLDER_INVALID")
    assert job.preflight["byReason"] == {"PLACEHOLDER_INVALID": 1}
