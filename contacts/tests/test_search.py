from __future__ import annotations

import re
import unicodedata

import pytest

from contacts.models import ConsentSource
from contacts.search import normalize_text
from contacts.selectors import contact_get_by_phone, contact_search
from contacts.services import contact_create, contact_soft_delete, contact_update

pytestmark = pytest.mark.django_db


def _names(queryset):
    return sorted(c.name for c in queryset)


@pytest.fixture
def people():
    return {
        "jose": contact_create(name="José Álvarez", phone="+919876543210", source=ConsentSource.API),
        "plain": contact_create(name="jose kumar", email="J.Kumar@Example.com", source=ConsentSource.API),
        "zoe": contact_create(name="Zoë Müller", email="zoe@mueller.de", source=ConsentSource.API),
        "uk": contact_create(name="Priya", phone="+442079460018", source=ConsentSource.API),
    }


def test_jose_finds_jose_with_an_accent(people):
    assert _names(contact_search(query="jose")) == ["José Álvarez", "jose kumar"]


def test_upper_case_with_an_accent_finds_the_plain_name(people):
    assert _names(contact_search(query="JOSÉ")) == ["José Álvarez", "jose kumar"]


def test_a_partial_name_matches_anywhere_in_it(people):
    assert _names(contact_search(query="varez")) == ["José Álvarez"]
    assert _names(contact_search(query="MULL")) == ["Zoë Müller"]


def test_several_words_must_all_match_in_any_order(people):
    assert _names(contact_search(query="kumar jose")) == ["jose kumar"]


def test_an_email_fragment_matches_case_insensitively(people):
    assert _names(contact_search(query="j.kumar@EXAMPLE")) == ["jose kumar"]
    assert _names(contact_search(query="mueller.de")) == ["Zoë Müller"]


@pytest.mark.parametrize(
    "typed",
    [
        "98765 43210",
        "9876543210",
        "098765 43210",
        "+91 98765-43210",
        "+919876543210",
        "0091 98765 43210",
        "(+91) 98765 43210",
        "98765",
        "+91 98765",
        "0091 98765",
        "43210",
    ],
)
def test_a_phone_typed_in_national_or_international_form_finds_the_contact(people, typed):
    assert _names(contact_search(query=typed)) == ["José Álvarez"]


@pytest.mark.parametrize("typed", ["020 7946 0018", "+44 20 7946 0018", "0044 20 7946 0018", "7946 0018"])
def test_a_foreign_number_is_found_in_its_own_forms(people, settings, typed):
    settings.DEFAULT_PHONE_REGION = "GB"

    assert _names(contact_search(query=typed)) == ["Priya"]


def test_deleted_contacts_never_appear(people):
    contact_soft_delete(contact=people["jose"], actor=None)

    assert _names(contact_search(query="jose")) == ["jose kumar"]
    assert not contact_search(query="98765 43210").exists()


def test_search_follows_changes_to_name_and_phone(people):
    contact_update(
        contact=people["uk"], data={"name": "Priya Señor", "phone": "+919812345678"}, actor=None, source="api"
    )

    assert _names(contact_search(query="senor")) == ["Priya Señor"]
    assert _names(contact_search(query="98123 45678")) == ["Priya Señor"]
    assert not contact_search(query="2079460018").exists()


def test_a_search_that_matches_nothing_returns_nothing(people):
    assert not contact_search(query="nobody-here").exists()


def test_an_empty_search_returns_every_active_contact(people):
    assert contact_search(query="  ").count() == 4


def test_search_can_narrow_a_given_queryset(people):
    from contacts.models import Contact

    only_email = Contact.objects.filter(email__isnull=False)

    assert _names(contact_search(query="jose", queryset=only_email)) == ["jose kumar"]


def test_contact_get_by_phone_accepts_any_usual_form(people):
    assert contact_get_by_phone("098765 43210") == people["jose"]
    assert contact_get_by_phone("+91 98765-43210") == people["jose"]
    assert contact_get_by_phone("not a number") is None
    assert contact_get_by_phone("+919999999999") is None


def test_results_come_in_name_order_ignoring_accents_and_case(people):
    contact_create(name="Ángela Jose", email="angela@example.com", source=ConsentSource.API)

    assert [c.name for c in contact_search(query="jose")] == ["Ángela Jose", "José Álvarez", "jose kumar"]


def test_one_or_two_characters_match_the_start_of_the_name(people):
    assert _names(contact_search(query="Jo")) == ["José Álvarez", "jose kumar"]
    assert _names(contact_search(query="zö")) == ["Zoë Müller"]
    # "ar" is inside "Álvarez" and "kumar", but two characters only match at the start.
    assert not contact_search(query="ar").exists()


def test_a_short_word_alongside_a_longer_one_still_narrows_the_match(people):
    assert _names(contact_search(query="jose al")) == ["José Álvarez"]


def test_a_search_the_planner_expects_to_be_very_broad_comes_newest_first(people, monkeypatch):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the estimate comes from PostgreSQL's planner")
    monkeypatch.setattr("contacts.selectors.BROAD_MATCH", 1)

    names = [c.name for c in contact_search(query="jose")]

    assert names == ["jose kumar", "José Álvarez"]  # created last, first


def _normalize_the_unicode_way(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.split(r"\s+", stripped.casefold())).strip()


@pytest.mark.parametrize(
    "text",
    [
        "".join(chr(i) for i in range(128)),  # every ASCII character, control and whitespace ones too
        *(f"a{chr(i)}B" for i in range(128)),
        "  JOSE \t\n  Alvarez  ",
        "Person@Example.COM",
        "O'Brien-Smith  III",
        "",
    ],
)
def test_the_ascii_shortcut_normalises_exactly_as_the_unicode_path(text):
    assert text.isascii()
    assert normalize_text(text) == _normalize_the_unicode_way(text)


def test_accented_and_other_non_ascii_text_normalises_as_the_unicode_reference():
    # Every character up to U+2FFF (Latin, Greek, Cyrillic, Indic scripts, combining marks), in blocks.
    blocks = ["".join(chr(code) for code in range(start, start + 256)) for start in range(0x80, 0x3000, 256)]
    for text in [*blocks, "Zoë  Łukasz\u00a0Søren", "e\u0301\u0302 ǅ ﬁ ①"]:
        assert normalize_text(text) == _normalize_the_unicode_way(text), text


def test_text_with_accents_still_loses_them():
    assert normalize_text("  José  ÁLVAREZ Straße") == "jose alvarez strasse"
