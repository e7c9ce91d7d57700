"""Roles on the API, the pages and the admin: Viewer sees, Operator decides, Admin manages the
knowledge base and the switches; every refusal is 403 and audited."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import AuditLog
from automation import services
from automation.models import AIConfig, AISuggestion, KnowledgeEntry, SuggestionStatus

pytestmark = pytest.mark.django_db

QUESTION = "What are your opening hours on Sunday?"


@pytest.fixture
def pending(faq, make_contact, inbound) -> AISuggestion:
    return services.suggestion_generate(inbound(make_contact(), QUESTION).pk)


def client_for(page_user, role: str) -> Client:
    client = Client()
    client.force_login(page_user(role))
    return client


def test_a_viewer_lists_and_filters_suggestions_but_a_decision_is_403_and_audited(pending, page_user):
    viewer = client_for(page_user, "Viewer")

    listed = viewer.get("/api/ai/suggestions/", {"status": "pending"})
    none = viewer.get("/api/ai/suggestions/", {"status": "rejected"})
    one = viewer.get(f"/api/ai/suggestions/{pending.pk}/")
    refused = viewer.post(f"/api/ai/suggestions/{pending.pk}/approve/", {}, content_type="application/json")

    assert listed.status_code == 200 and [s["suggestionId"] for s in listed.json()["results"]] == [str(pending.pk)]
    assert none.json()["results"] == []
    assert one.json()["source"] == "knowledge_base" and one.json()["knowledgeContext"][0]["source_id"].startswith("kb:")
    assert refused.status_code == 403
    assert AuditLog.objects.filter(action="forbidden", resource_id=str(pending.pk)).exists()
    assert AISuggestion.objects.get(pk=pending.pk).status == SuggestionStatus.PENDING


def test_an_operator_rejects_with_a_reason_and_gives_feedback_through_the_api(pending, page_user):
    operator = client_for(page_user, "Operator")

    missing = operator.post(f"/api/ai/suggestions/{pending.pk}/reject/", {}, content_type="application/json")
    rejected = operator.post(f"/api/ai/suggestions/{pending.pk}/reject/", {"reason": "Wrong branch"},
                             content_type="application/json")  # fmt: skip
    twice = operator.post(f"/api/ai/suggestions/{pending.pk}/approve/", {}, content_type="application/json")
    rated = operator.post(f"/api/ai/suggestions/{pending.pk}/feedback/", {"rating": "useful", "comment": "close"},
                          content_type="application/json")  # fmt: skip
    bad = operator.post(f"/api/ai/suggestions/{pending.pk}/feedback/", {"rating": "5 stars"},
                        content_type="application/json")  # fmt: skip

    assert missing.status_code == 400 and "reason" in missing.json()
    assert rejected.status_code == 200 and rejected.json()["rejectReason"] == "Wrong branch"
    assert twice.status_code == 409 and twice.json()["code"] == "NOT_PENDING"
    assert rated.json()["feedbackRating"] == "useful" and rated.json()["feedbackComment"] == "close"
    assert bad.status_code == 400
    assert AuditLog.objects.filter(action="automation.reject", resource_id=str(pending.pk)).exists()


def test_an_unknown_suggestion_is_404(page_user):
    operator = client_for(page_user, "Operator")
    response = operator.post("/api/ai/suggestions/00000000-0000-0000-0000-000000000000/approve/", {},
                             content_type="application/json")  # fmt: skip
    assert response.status_code == 404


def test_the_agent_page_lists_pending_suggestions_newest_first_with_their_source_and_score(
    faq, make_contact, inbound, page_user
):
    older = services.suggestion_generate(inbound(make_contact(name="Older"), QUESTION).pk)
    newer = services.suggestion_generate(inbound(make_contact(name="Newer"), "Do you ship to Mumbai?").pk)

    html = client_for(page_user, "Operator").get("/agent/").content.decode()

    assert html.index(str(newer.pk)) < html.index(str(older.pk))
    assert "From the knowledge base · score" in html and "Approve and send" in html
    assert "No suggestions waiting" not in html


def test_a_viewer_sees_the_queue_read_only_and_a_posted_decision_is_403_and_audited(pending, page_user):
    viewer = client_for(page_user, "Viewer")

    html = viewer.get("/agent/").content.decode()
    refused = viewer.post(f"/agent/{pending.pk}/approve/", {"text": "hi"})

    assert str(pending.pk) in html and "Approve and send" not in html and "not decide" in html
    assert refused.status_code == 403
    assert AuditLog.objects.filter(action="forbidden", details__path=f"/agent/{pending.pk}/approve/").exists()


def test_approving_on_the_page_sends_and_returns_to_the_conversation(pending, page_user):
    operator = client_for(page_user, "Operator")
    back = f"/dm/{pending.contact_id}/"

    response = operator.post(f"/agent/{pending.pk}/approve/", {"text": pending.response, "next": back})

    assert response.status_code == 302 and response["Location"] == back
    pending.refresh_from_db()
    assert pending.status == SuggestionStatus.APPROVED and pending.sent_message.content == pending.response


def test_a_foreign_next_address_is_ignored(pending, page_user):
    operator = client_for(page_user, "Operator")
    response = operator.post(f"/agent/{pending.pk}/reject/", {"reason": "no", "next": "https://evil.example/"})
    assert response["Location"] == "/agent/"


def test_the_dm_conversation_shows_the_pending_suggestion_beside_the_composer(pending, page_user):
    html = client_for(page_user, "Operator").get(f"/dm/{pending.contact_id}/").content.decode()

    assert 'data-testid="dm-suggestion"' in html
    assert html.index('data-testid="dm-suggestion"') < html.index('id="composer"')
    assert f'value="/dm/{pending.contact_id}/"' in html  # decisions come back here


def test_only_admins_import_the_knowledge_base_in_the_admin(page_user, settings):
    operator, admin = client_for(page_user, "Operator"), client_for(page_user, "Admin")
    upload = SimpleUploadedFile("faq.md", b"## Is parking free?\nYes, for two hours.\n", content_type="text/markdown")

    refused = operator.post("/admin/automation/knowledgeentry/import/", {"file": upload})
    upload.seek(0)
    done = admin.post("/admin/automation/knowledgeentry/import/", {"file": upload})
    settings.AI_KB_IMPORT_MAX_BYTES = 1024
    too_big = admin.post("/admin/automation/knowledgeentry/import/",
                         {"file": SimpleUploadedFile("big.csv", b"question,answer\n" + b"q,a\n" * 400)})  # fmt: skip

    assert refused.status_code == 403
    assert done.status_code == 302
    assert list(KnowledgeEntry.objects.values_list("question", "answer")) == [
        ("Is parking free?", "Yes, for two hours.")
    ]
    assert too_big.status_code == 200 and "larger than 1024 bytes" in too_big.content.decode()


def test_admins_switch_ai_in_the_admin_and_the_change_is_audited(page_user):
    admin = client_for(page_user, "Admin")
    services.ai_config()

    response = admin.post("/admin/automation/aiconfig/1/change/", {"enabled": ""})

    assert response.status_code == 302
    assert AIConfig.objects.get().enabled is False
    assert AuditLog.objects.filter(action="automation.switch", details={"enabled": False}).exists()
    assert client_for(page_user, "Operator").get("/admin/automation/aiconfig/1/change/").status_code == 403


def test_in_the_admin_an_operator_may_set_feedback_but_not_change_the_draft(pending, page_user):
    operator = client_for(page_user, "Operator")

    page = operator.get(f"/admin/automation/aisuggestion/{pending.pk}/change/")
    response = operator.post(f"/admin/automation/aisuggestion/{pending.pk}/change/",
                             {"reject_reason": "", "feedback_rating": "useful", "feedback_comment": "good",
                              "response": "tampered"})  # fmt: skip

    assert page.status_code == 200
    assert response.status_code == 302
    pending.refresh_from_db()
    assert (pending.feedback_rating, pending.feedback_comment) == ("useful", "good")
    assert pending.response != "tampered" and pending.status == SuggestionStatus.PENDING


def test_admins_switch_ai_on_the_agent_page_and_operators_are_refused(page_user, settings):
    admin, operator = client_for(page_user, "Admin"), client_for(page_user, "Operator")
    number = settings.WHATSAPP_PHONE_NUMBER_IDS[1]

    assert 'data-testid="ai-switches"' in admin.get("/agent/").content.decode()
    assert 'data-testid="ai-switches"' not in operator.get("/agent/").content.decode()
    off = admin.post("/agent/switch/", {"enabled": "off", "phone_number_id": number})
    unknown = admin.post("/agent/switch/", {"enabled": "off", "phone_number_id": "phone-number-id-elsewhere"})
    refused = operator.post("/agent/switch/", {"enabled": "off"})

    assert off.status_code == 302 and not services.ai_enabled_for(number) and services.ai_enabled_for("")
    assert unknown.status_code == 302 and services.ai_enabled_for("phone-number-id-elsewhere")
    assert refused.status_code == 403 and services.ai_enabled_for("")
    assert AuditLog.objects.filter(action="automation.switch").count() == 1
    assert AuditLog.objects.filter(action="forbidden", details__path="/agent/switch/").exists()
