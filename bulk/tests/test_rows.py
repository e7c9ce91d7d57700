"""rows_update: many recipients' outcomes in one statement, on PostgreSQL (UPDATE … FROM VALUES) and on
SQLite (CASE); run this file with DATABASE_URL=sqlite://… for the second."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bulk.models import BulkJob, BulkRecipient, RecipientStatus
from bulk.rows import rows_update
from contacts.models import Contact
from messaging.models import Message
from wecare.tests.sqlite_rerun import rerun_on_sqlite

pytestmark = pytest.mark.django_db


def _recipients(operator, count: int) -> list[BulkRecipient]:
    job = BulkJob.objects.create(channel="whatsapp", content="hi", created_by=operator)
    contacts = Contact.objects.bulk_create(
        [Contact(name=f"Row {i}", phone=f"+9198765{i:05d}", opt_in_whatsapp=True) for i in range(count)]
    )
    return BulkRecipient.objects.bulk_create(
        [
            BulkRecipient(job=job, contact=contact, sequence=i, status=RecipientStatus.SENDING)
            for i, contact in enumerate(contacts)
        ]
    )


def test_each_row_gets_its_own_outcome_in_one_statement(operator):
    # given: three recipients being sent
    first, second, third = _recipients(operator, 3)
    now = timezone.now()

    # when: two outcomes written at once
    with CaptureQueriesContext(connection) as queries:
        changed = rows_update(
            BulkRecipient,
            {
                first.pk: {"status": RecipientStatus.SENT, "error_code": "", "error_details": "", "sent_at": now},
                second.pk: {
                    "status": RecipientStatus.SKIPPED,
                    "error_code": "NO_CONSENT",
                    "error_details": 'It\'s "off"',
                    "sent_at": None,
                },  # fmt: skip
            },
            same={"updated_at": now},
            where={"status": RecipientStatus.SENDING},
        )

    # then: one statement, and each row has its own values; the third is untouched
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert sorted(changed) == sorted([first.pk, second.pk])
    first.refresh_from_db(), second.refresh_from_db(), third.refresh_from_db()
    assert (first.status, first.error_code, first.sent_at, first.updated_at) == (RecipientStatus.SENT, "", now, now)
    assert (second.status, second.error_code, second.error_details) == (
        RecipientStatus.SKIPPED, "NO_CONSENT", "It's \"off\""
    )  # fmt: skip
    assert second.sent_at is None
    assert third.status == RecipientStatus.SENDING


def test_a_row_whose_condition_no_longer_holds_is_left_alone_and_not_reported(operator):
    # given: a recipient another worker already settled
    mine, settled = _recipients(operator, 2)
    BulkRecipient.objects.filter(pk=settled.pk).update(status=RecipientStatus.CANCELLED)

    # when
    changed = rows_update(
        BulkRecipient,
        {pk: {"status": RecipientStatus.SENT} for pk in (mine.pk, settled.pk)},
        where={"status": RecipientStatus.SENDING},
    )

    # then
    assert changed == [mine.pk]
    settled.refresh_from_db()
    assert settled.status == RecipientStatus.CANCELLED


def test_foreign_keys_json_and_counters_are_written_as_the_orm_writes_them(operator):
    # given: two recipients, each with a message of its own
    recipients = _recipients(operator, 2)
    messages = Message.objects.bulk_create(
        [Message(contact_id=r.contact_id, channel="whatsapp", content="hi", status="queued") for r in recipients]
    )

    # when: each recipient linked to its message; the messages get their own details and one more attempt
    rows_update(BulkRecipient, {r.pk: {"message": m.pk} for r, m in zip(recipients, messages, strict=True)})
    rows_update(
        Message,
        {m.pk: {"provider_message_id": f"wamid.{i}", "error_details": {"requestId": f"r-{i}"}} for i, m in
         enumerate(messages)},
        same={"status": "sent"},
        increment=["attempts"],
    )  # fmt: skip

    # then
    for i, (recipient, message) in enumerate(zip(recipients, messages, strict=True)):
        recipient.refresh_from_db()
        message.refresh_from_db()
        assert recipient.message_id == message.pk
        assert (message.provider_message_id, message.error_details) == (f"wamid.{i}", {"requestId": f"r-{i}"})
        assert (message.status, message.attempts) == ("sent", 1)


def test_a_hundred_rows_in_one_statement(operator):
    recipients = _recipients(operator, 100)
    changed = rows_update(BulkRecipient, {r.pk: {"error_code": f"E{i}"} for i, r in enumerate(recipients)})
    assert len(changed) == 100
    codes = dict(BulkRecipient.objects.filter(pk__in=changed).values_list("pk", "error_code"))
    assert all(codes[r.pk] == f"E{i}" for i, r in enumerate(recipients))


def test_the_same_rows_are_written_alike_on_sqlite(tmp_path):
    """The tests above, again on SQLite (the `make run` default), where the statement is a CASE."""
    rerun_on_sqlite(
        tmp_path,
        __file__,
        (
            "test_each_row_gets_its_own_outcome_in_one_statement",
            "test_a_row_whose_condition_no_longer_holds_is_left_alone_and_not_reported",
            "test_foreign_keys_json_and_counters_are_written_as_the_orm_writes_them",
            "test_a_hundred_rows_in_one_statement",
        ),
    )
