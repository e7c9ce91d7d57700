"""The placeholder renderer (messaging.personalise) on plain mappings and on contacts."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest

from messaging.outbound.request import SendRequest
from messaging.personalise import (
    PlaceholderError,
    contact_values,
    placeholder_problem,
    placeholders,
    render,
    request_render,
)


def test_name_and_attributes_are_filled_from_the_values():
    result = render("Hi {{name}}, see you in {{ attr.city }}!", {"name": "Asha", "attr.city": "Pune"})

    assert result.text == "Hi Asha, see you in Pune!" and result.missing == []


def test_a_fallback_fills_a_placeholder_the_contact_has_no_value_for():
    assert render("See you {{attr.city|there}}.", {}).text == "See you there."
    assert render("See you {{attr.city|there}}.", {"attr.city": "  "}).text == "See you there."


def test_a_required_placeholder_without_a_value_is_reported_missing_and_left_in_place():
    result = render("Hi {{name}} from {{attr.city}} and {{attr.city}}", {"name": "Asha"})

    assert result.missing == ["attr.city"]
    assert "{{attr.city}}" in result.text


def test_an_empty_fallback_makes_a_placeholder_optional():
    result = render("Hello{{attr.title|}} {{name}}", {"name": "Asha"})

    assert result.text == "Hello Asha" and result.missing == []


def test_a_value_that_looks_like_a_placeholder_is_not_expanded_again():
    result = render("Hi {{name}}", {"name": "{{attr.secret}}", "attr.secret": "leak"})

    assert result.text == "Hi {{attr.secret}}"


def test_values_are_escaped_for_html_and_folded_where_line_breaks_are_refused():
    import html

    assert render("<p>{{name}}</p>", {"name": "<b>A&B</b>"}, escape=html.escape).text == (
        "<p>&lt;b&gt;A&amp;B&lt;/b&gt;</p>"
    )
    assert render("{{attr.note}}", {"attr.note": "one\n\ttwo     three"}, inline=True).text == "one two three"


@pytest.mark.parametrize("text", ["Hi {{1}}", "Hi {{first name}}", "Hi {{attr.}}", "{{contact.city}}", "{{ }}"])
def test_a_placeholder_that_is_not_ours_is_an_error_in_the_message(text):
    with pytest.raises(PlaceholderError, match="unknown placeholder"):
        placeholders(text)
    assert "unknown placeholder" in placeholder_problem("fine {{name}}", [text])


def test_placeholders_are_parsed_with_their_fallbacks():
    found = placeholders("{{name}} {{attr.city|there}} {{first_name}}")

    assert [(p.key, p.fallback) for p in found] == [("name", None), ("attr.city", "there"), ("first_name", None)]


def test_contact_values_read_the_name_addresses_and_typed_attributes():
    contact = SimpleNamespace(
        name="Asha Rao",
        phone="+919876543210",
        email=None,
        attributes={"city": "Pune", "visits": 3, "vip": True, "joined": date(2024, 5, 1), "empty": None},
    )

    values = contact_values(contact)

    assert values["first_name"] == "Asha" and values["name"] == "Asha Rao" and values["email"] == ""
    assert values["attr.city"] == "Pune" and values["attr.visits"] == "3"
    assert values["attr.vip"] == "yes" and values["attr.joined"] == "2024-05-01" and values["attr.empty"] == ""


def test_contact_values_work_on_a_contact_without_attributes():
    assert contact_values(SimpleNamespace(name="", phone=None, email="a@example.org")) == {
        "name": "",
        "first_name": "",
        "phone": "",
        "email": "a@example.org",
    }


def test_a_request_is_rendered_in_every_part_and_no_longer_asks_to_be_personalised():
    request = SendRequest(
        contact_id="c",
        channel="whatsapp",
        message_type="template",
        template_name="promo",
        template_language="en",
        template_parameters=["{{first_name}}", "{{attr.city|your city}}"],
        template_header="{{attr.offer}}",
        template_buttons={"0": "{{attr.code}}", "1": "STOP-{{attr.code}}"},
        personalise=True,
    )

    rendered = request_render(request, {"first_name": "Asha", "attr.offer": "20% off", "attr.code": "A1"})

    assert rendered.missing == []
    assert rendered.request.template_parameters == ["Asha", "your city"]
    assert rendered.request.template_header == "20% off"
    assert rendered.request.template_buttons == {"0": "A1", "1": "STOP-A1"}
    assert rendered.request.personalise is False


def test_a_template_parameter_rendered_blank_counts_as_missing():
    request = SendRequest(
        contact_id="c", channel="whatsapp", message_type="template", template_parameters={"city": "{{attr.city|}}"}
    )

    assert request_render(request, {}).missing == ["attr.city"]


def test_email_subject_text_and_html_are_rendered_and_missing_keys_listed_once():
    request = SendRequest(
        contact_id="c",
        channel="email",
        message_type="email",
        subject="News for {{name}}",
        text="Dear {{name}}, {{attr.plan}}",
        html="<p>{{attr.plan}}</p>",
    )

    rendered = request_render(request, {"name": "Asha\nRao"})

    assert rendered.request.subject == "News for Asha Rao"
    assert rendered.missing == ["attr.plan"]
