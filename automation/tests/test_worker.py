"""A real Celery worker consuming only the AI queue drafts the suggestion for an inbound message."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings

from automation.models import AISuggestion, KnowledgeEntry, SuggestionStatus
from automation.tests.conftest import FAQ
from conftest import wait_until
from contacts.models import Contact
from messaging import inbound as messaging_inbound
from messaging.models import Message
from messaging.tests.inbound_fixtures import clean_claims, drain_queue, sns_setup  # noqa: F401
from messaging.tests.sns_signing import eum_envelope, inbound_value, sns_notification

pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("sns_setup", "clean_claims")]


def test_an_inbound_question_is_answered_by_the_worker_on_the_ai_queue(celery_worker_factory):
    drain_queue(settings.QUEUE_AI)
    KnowledgeEntry.objects.bulk_create(KnowledgeEntry(question=q, answer=a, tags=t) for q, a, t in FAQ)
    Contact.objects.create(name="Diego", phone="+14255550188", opt_in_whatsapp=True)
    worker = celery_worker_factory(queues=[settings.QUEUE_AI], concurrency=1)
    wamid = f"wamid.ai-worker-{uuid.uuid4().hex}"
    body = sns_notification(eum_envelope(inbound_value(
        {"id": wamid, "type": "text", "text": {"body": "Do you ship to Mumbai?"}}, wa_id="14255550188")))  # fmt: skip

    messaging_inbound.notification_process(body)  # autocommit: the AI task is queued as the message commits

    message = Message.objects.get(whatsapp_message_id=wamid)  # stored before any AI work
    suggestion = wait_until(lambda: AISuggestion.objects.filter(inbound_message=message).first(), timeout=60,
                            message=f"a suggestion from the AI worker\n{worker.log()}")  # fmt: skip
    assert suggestion.status == SuggestionStatus.PENDING
    assert suggestion.response == "Yes, delivery to Mumbai takes 3 to 5 working days."
    assert "automation.tasks.suggest_reply" in worker.log()
