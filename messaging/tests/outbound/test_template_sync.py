"""WhatsApp templates kept in step with AWS (linked WABAs → their templates → each definition)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command

from messaging.models import TemplateStatus, WhatsAppTemplate
from messaging.tasks.templates import sync_whatsapp_templates
from messaging.whatsapp_templates import TemplateDefinitionError, template_placeholders, whatsapp_template_sync

pytestmark = pytest.mark.django_db

WABA = "waba-01234567890123456789012345678901"
ACCOUNT = {
    "arn": f"arn:aws:social-messaging:us-east-1:809904170947:waba/{WABA[5:]}",
    "id": WABA,
    "wabaId": "365731266123456",
    "registrationStatus": "COMPLETE",
    "linkDate": datetime(2025, 1, 1, tzinfo=UTC),
    "wabaName": "WECARE.DIGITAL",
    "eventDestinations": [],
}


def _definition(name: str, body: str, *, fmt: str = "POSITIONAL", extra: list | None = None) -> dict:
    return {
        "template": json.dumps(
            {
                "name": name,
                "language": "en_US",
                "status": "APPROVED",
                "category": "UTILITY",
                "parameter_format": fmt,
                "components": [{"type": "BODY", "text": body}, *(extra or [])],
                "id": "1234",
            }
        )
    }


def _expect_listing(stub, templates: list[dict]) -> None:
    stub.expect("list_linked_whatsapp_business_accounts", {"linkedAccounts": [ACCOUNT]}, {"maxResults": 100})
    stub.expect("list_whatsapp_message_templates", {"templates": templates}, {"id": WABA, "maxResults": 100})


def test_templates_of_every_linked_waba_are_created_with_their_placeholders(whatsapp_stub):
    _expect_listing(
        whatsapp_stub,
        [
            {
                "templateName": "order_update",
                "metaTemplateId": "111",
                "templateStatus": "APPROVED",
                "templateLanguage": "en_US",
                "templateCategory": "UTILITY",
            },
            {
                "templateName": "welcome",
                "metaTemplateId": "222",
                "templateStatus": "PENDING",
                "templateLanguage": "en_US",
                "templateCategory": "MARKETING",
            },
        ],
    )
    whatsapp_stub.expect(
        "get_whatsapp_message_template",
        _definition("order_update", "Hi {{1}}, order {{2}} shipped."),
        {"id": WABA, "metaTemplateId": "111"},
    )
    whatsapp_stub.expect(
        "get_whatsapp_message_template",
        _definition("welcome", "Welcome {{first_name}}!", fmt="NAMED"),
        {"id": WABA, "metaTemplateId": "222"},
    )

    result = whatsapp_template_sync()

    whatsapp_stub.done()
    assert (result.wabas, result.created, result.updated, result.errors) == (1, 2, 0, [])
    order = WhatsAppTemplate.objects.get(name="order_update")
    assert (order.status, order.category, order.body_parameters, order.parameter_format) == (
        TemplateStatus.APPROVED,
        "UTILITY",
        ["1", "2"],
        "positional",
    )
    welcome = WhatsAppTemplate.objects.get(name="welcome")
    assert (welcome.status, welcome.body_parameters, welcome.parameter_format) == ("PENDING", ["first_name"], "named")
    assert order.waba_id == WABA and order.meta_template_id == "111" and order.synced_at


def test_a_template_gone_from_its_waba_is_disabled_and_a_changed_one_updated(whatsapp_stub, make_template):
    gone = make_template("old_promo", "Sale!")
    WhatsAppTemplate.objects.filter(pk=gone.pk).update(waba_id=WABA)
    kept = make_template("order_update", "Old text {{1}}")
    _expect_listing(
        whatsapp_stub,
        [
            {
                "templateName": "order_update",
                "metaTemplateId": "111",
                "templateStatus": "PAUSED",
                "templateLanguage": "en_US",
                "templateCategory": "UTILITY",
            }
        ],
    )
    whatsapp_stub.expect("get_whatsapp_message_template", _definition("order_update", "New {{1}} and {{2}}"))

    result = whatsapp_template_sync()

    assert (result.created, result.updated, result.disabled) == (0, 1, 1)
    gone.refresh_from_db()
    kept.refresh_from_db()
    assert gone.status == TemplateStatus.DISABLED
    assert kept.status == TemplateStatus.PAUSED and kept.body == "New {{1}} and {{2}}"


def test_the_command_reports_what_it_did_and_fails_loudly_on_a_provider_error(whatsapp_stub):
    _expect_listing(whatsapp_stub, [])
    out = io.StringIO()
    call_command("sync_whatsapp_templates", stdout=out)
    assert "WABAs: 1" in out.getvalue()

    whatsapp_stub.error("list_linked_whatsapp_business_accounts", "AccessDeniedException", 403, "no")
    with pytest.raises(CommandError, match="AccessDeniedException"):
        call_command("sync_whatsapp_templates", stdout=io.StringIO())


def test_the_periodic_task_runs_the_sync(whatsapp_stub):
    _expect_listing(whatsapp_stub, [])

    assert sync_whatsapp_templates.apply().get()["wabas"] == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("No variables", ("positional", [])),
        ("Hi {{1}} and {{2}}, again {{1}}", ("positional", ["1", "2"])),
        ("Hi {{ name }} / {{order_id}}", ("named", ["name", "order_id"])),
    ],
)
def test_placeholders_are_read_from_the_body(body, expected):
    assert template_placeholders(body) == expected


@pytest.mark.parametrize("body", ["{{1}} and {{3}}", "{{1}} and {{name}}", "{{First Name}}"])
def test_malformed_placeholders_are_refused(body):
    with pytest.raises(TemplateDefinitionError):
        template_placeholders(body)
