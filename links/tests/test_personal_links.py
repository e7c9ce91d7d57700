"""Personal links: a short link in a one-to-one or bulk message becomes the recipient's own
/l/<slug>/<token>, rewritten in one place of the outbound path (messaging.outbound.links), only for
messages the gate lets through; clicks then count for the contact, the job and its click-through rate."""

from __future__ import annotations

import re

import pytest

from bulk import execution
from bulk.models import BulkJob, JobStatus
from bulk.services import BulkMessage, bulk_job_confirm, bulk_job_create
from links.models import Click, PersonalLink
from links.selectors import bulk_job_clicks, contact_clicks
from links.services import link_update
from links.tests.conftest import BROWSER_UA
from messaging.channels.sms import segment_count
from messaging.models import Message
from messaging.safety import SafetyRefusal
from messaging.services import message_send, send_request_build

PERSONAL = re.compile(r"http://localhost/l/(?P<slug>[\w-]+)/(?P<token>[\w-]{11})\b")


@pytest.fixture(autouse=True)
def dry_run(settings):
    settings.SEND_MODE = "DRY_RUN"
    settings.RATE_LIMIT_SMS = settings.RATE_LIMIT_EMAIL = 10_000.0


def send_sms(contact, text):
    return message_send(send_request_build(contact_id=contact.pk, channel="sms", text=text), enqueue=False)


@pytest.mark.django_db
def test_a_short_link_in_a_one_to_one_sms_becomes_the_recipients_personal_link(make_link, make_contact):
    link = make_link(slug="summer")
    contact = make_contact(opt_ins={"sms": True})

    message = send_sms(contact, "Sale! http://localhost/l/summer and again http://localhost/l/summer. Bye")

    match = PERSONAL.search(message.content)
    assert match and match["slug"] == "summer"
    assert message.content.count(match[0]) == 2  # one token per message and link
    personal = PersonalLink.objects.get()
    assert (personal.token, personal.link, personal.contact, personal.message_id, personal.bulk_job) == (
        match["token"],
        link,
        contact,
        message.pk,
        None,
    )
    assert Message.objects.get(pk=message.pk).content == message.content
    assert message.segments == segment_count(message.content).count  # the SMS parts of the sent text


@pytest.mark.django_db
def test_other_addresses_and_switched_off_links_are_left_exactly_as_written(operator, make_link, make_contact):
    off = make_link(slug="offline")
    link_update(link=off, user=operator, enabled=False)
    contact = make_contact(opt_ins={"sms": True})
    text = "See https://example.com/l/summer, http://localhost/l/offline and http://localhost/l/unknown1"

    message = send_sms(contact, text)

    assert message.content == text
    assert not PersonalLink.objects.exists()


@pytest.mark.django_db
def test_a_message_the_gate_refuses_gets_no_personal_link(make_link, make_contact):
    make_link(slug="summer")
    contact = make_contact(opt_ins={"sms": False})

    with pytest.raises(SafetyRefusal):
        send_sms(contact, "Sale! http://localhost/l/summer")

    assert not PersonalLink.objects.exists() and not Message.objects.exists()


@pytest.mark.django_db
def test_an_emails_text_and_html_share_the_recipients_token(make_link, make_contact):
    make_link(slug="news")
    contact = make_contact(email="asha@example.com", opt_ins={"email": True})

    message = message_send(
        send_request_build(
            contact_id=contact.pk,
            channel="email",
            subject="News",
            text="Read it: http://localhost/l/news",
            html='<p><a href="http://localhost/l/news">Read it</a></p>',
        ),
        enqueue=False,
    )

    token = PERSONAL.search(message.content)["token"]
    assert f'href="http://localhost/l/news/{token}"' in message.html
    assert PersonalLink.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_each_bulk_recipient_gets_their_own_link_and_their_click_counts_for_the_job(
    client, operator, make_link, make_contact, reset_aws
):
    link = make_link(slug="bulk-sale")
    contacts = [make_contact(name=f"R{i}", opt_ins={"sms": True}) for i in range(4)]
    quiet = make_contact(name="Not opted in", opt_ins={"sms": False})
    job = bulk_job_create(
        user=operator,
        channel="sms",
        message=BulkMessage(content="Sale today: http://localhost/l/bulk-sale"),
        contact_ids=[str(c.pk) for c in [*contacts, quiet]],
    )
    if job.status == JobStatus.AWAITING_CONFIRMATION:
        job = bulk_job_confirm(job_id=job.pk, user=operator, count=job.preflight["willSend"])
    for chunk_id in job.chunks.order_by("sequence").values_list("pk", flat=True):
        execution.chunk_process(chunk_id)
    job = BulkJob.objects.get(pk=job.pk)

    tokens = {m.contact_id: PERSONAL.search(m.content)["token"] for m in Message.objects.all()}
    assert job.sent_count == 4 and len(set(tokens.values())) == 4
    assert set(PersonalLink.objects.values_list("bulk_job_id", flat=True)) == {job.pk}
    assert set(PersonalLink.objects.values_list("contact_id", flat=True)) == {c.pk for c in contacts}  # not quiet

    first = contacts[0]
    for _ in range(2):  # one person clicking twice: two clicks, one clicker
        client.get(f"/l/bulk-sale/{tokens[first.pk]}", HTTP_USER_AGENT=BROWSER_UA)
    client.get(f"/l/bulk-sale/{tokens[contacts[1].pk]}", HTTP_USER_AGENT="WhatsApp/2.23.20.0 A")  # a preview

    stats = bulk_job_clicks(job)
    assert (stats.clicks, stats.clickers, stats.sent, stats.click_through_rate) == (2, 1, 4, 25.0)
    assert stats.links == [("bulk-sale", 2)]
    assert [c.link == link and c.bulk_job_id == job.pk for c in contact_clicks(first)] == [True, True]
    assert Click.objects.filter(contact=contacts[1]).count() == 0
