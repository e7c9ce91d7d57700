"""How contacts are found: one lower-case, accent-free ``search_text`` column per contact.

The column holds the name, the email and the phone's digit forms; a query is normalised the same
way and matched with ``LIKE '%term%'``, which the GIN trigram index (migration 0002) serves on
PostgreSQL. Keep ``build_search_text`` and ``search_terms`` in step: they must normalise alike.
"""

from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError

from contacts.phones import normalize_phone, phone_query_digits, phone_search_forms

# pg_trgm indexes three-character sequences: a shorter term cannot use the trigram index.
MIN_SUBSTRING_LENGTH = 3

# Characters a typed phone number is made of: digits, "+", spaces, dots, dashes, slashes, brackets.
_PHONE_LIKE = re.compile(r"[+\d\s().\-/]+")
_SPACES = re.compile(r"\s+")


class _CombiningMarks(dict):
    """A str.translate table that deletes combining marks (the accents NFKD splits off), filled in
    as characters are met: translate in C is several times faster than a per-character generator."""

    def __missing__(self, code: int) -> int | None:
        self[code] = None if unicodedata.combining(chr(code)) else code
        return self[code]


_WITHOUT_COMBINING_MARKS = _CombiningMarks()


def normalize_text(value: str) -> str:
    """Lower-case (casefold), accents stripped, whitespace collapsed: "  José  ÁLVAREZ" → "jose alvarez"."""
    value = value or ""
    if value.isascii():
        # Most names and every email: NFKD leaves ASCII as it is and casefold is lower(), so the
        # unicode decomposition, per character, is skipped (it is done for every imported row).
        return _SPACES.sub(" ", value.lower()).strip()
    stripped = unicodedata.normalize("NFKD", value).translate(_WITHOUT_COMBINING_MARKS)
    return _SPACES.sub(" ", stripped.casefold()).strip()


def build_search_text(*, name: str | None, phone: str | None, email: str | None) -> str:
    parts = [normalize_text(name or ""), normalize_text(email or "")]
    if phone:
        parts.extend(phone_search_forms(phone))
    return " ".join(part for part in parts if part)


def is_phone_query(query: str) -> bool:
    text = query.strip()
    return bool(_PHONE_LIKE.fullmatch(text)) and sum(ch.isdigit() for ch in text) >= 3


def exact_phone(query: str) -> str | None:
    """The E.164 number if ``query`` is a complete, valid phone number in any usual form."""
    if not is_phone_query(query):
        return None
    try:
        return normalize_phone(query)
    except ValidationError:
        return None


def search_terms(query: str) -> list[str]:
    """The substrings a contact's search_text must all contain to match ``query``.

    A phone typed in any form ("98765 43210", "+91 98765-43210", "0091 98765 43210") becomes one
    digit string; anything else is split into normalised words, each of which must appear.
    """
    if is_phone_query(query):
        return [phone_query_digits(query)]
    return normalize_text(query).split()
