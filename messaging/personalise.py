"""Personalisation: placeholders filled from the contact, the one renderer every send uses.

Syntax (in a text body, an email subject, text or HTML, WhatsApp template parameters, a template's
header text and button values):

- ``{{name}}``, ``{{first_name}}`` (first word of the name), ``{{phone}}``, ``{{email}}``;
- ``{{attr.city}}``: the contact's custom attribute ``city`` (``Contact.attributes``, a dict keyed by
  attribute name);
- ``{{attr.city|there}}``: with a fallback used when the contact has no value.

A placeholder without a fallback is required: a contact with no value for it is refused by the gate
(PLACEHOLDER_MISSING, per recipient) rather than sent a message with a hole. Any other ``{{...}}`` is
an error in the message itself (`placeholder_problem`), refused before anything is stored.

Rendering is one pass: a value that itself contains ``{{...}}`` is never expanded again. Values put
in HTML are escaped; values put where a line break is refused (template parameters, a subject) have
their whitespace runs folded to one space (Meta refuses new lines, tabs and five spaces, #132018).
"""

from __future__ import annotations

import dataclasses
import html as html_lib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from messaging.outbound.request import SendRequest

# Anything between double braces; what is inside is parsed (and refused if unknown) by `parse`.
PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
KEY = re.compile(r"^(name|first_name|phone|email|attr\.[A-Za-z0-9_][A-Za-z0-9_\-]{0,99})$")
CONTACT_KEYS = ("name", "first_name", "phone", "email")
FALLBACK_MAX_CHARS = 200
SYNTAX_HELP = "use {{name}}, {{first_name}}, {{phone}}, {{email}} or {{attr.NAME}}, optionally with |fallback"


class PlaceholderError(ValueError):
    """The text has a placeholder that is not ours or is malformed."""


@dataclass(frozen=True)
class Placeholder:
    key: str  # "name", "attr.city"
    fallback: str | None  # None: required


@dataclass
class Rendered:
    text: str
    missing: list[str] = field(default_factory=list)  # required keys with no value


def parse(raw: str) -> Placeholder:
    """One placeholder's inside ("attr.city|there") as a Placeholder; raises PlaceholderError."""
    key, bar, fallback = raw.partition("|")
    key = key.strip()
    if not KEY.match(key):
        raise PlaceholderError(f"unknown placeholder {{{{{raw.strip()}}}}}: {SYNTAX_HELP}")
    if bar:
        fallback = fallback.strip()
        if len(fallback) > FALLBACK_MAX_CHARS or "{" in fallback or "}" in fallback:
            raise PlaceholderError(f"the fallback of {{{{{key}}}}} is longer than {FALLBACK_MAX_CHARS} or has braces")
        return Placeholder(key, fallback)
    return Placeholder(key, None)


def placeholders(text: str) -> list[Placeholder]:
    """Every placeholder of a text, in order; raises PlaceholderError on the first bad one."""
    return [parse(raw) for raw in PLACEHOLDER.findall(text or "")]


def _texts(value: Any) -> list[str]:
    """The texts inside a value (a string, a list or dict of them)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [v for item in value.values() for v in _texts(item)]
    if isinstance(value, list | tuple):
        return [v for item in value for v in _texts(item)]
    return []


def placeholder_problem(*values: Any) -> str | None:
    """Why these message parts cannot be personalised (a placeholder not ours), or None."""
    for value in values:
        for text in _texts(value):
            try:
                placeholders(text)
            except PlaceholderError as exc:
                return str(exc)
    return None


def placeholder_attributes(*values: Any) -> list[str]:
    """The attribute names (``attr.<name>``) these message parts use; the parts must parse."""
    names: list[str] = []
    for value in values:
        for text in _texts(value):
            for placeholder in placeholders(text):
                name = placeholder.key.removeprefix("attr.")
                if placeholder.key.startswith("attr.") and name not in names:
                    names.append(name)
    return names


def has_placeholders(*values: Any) -> bool:
    return any(PLACEHOLDER.search(text) for value in values for text in _texts(value))


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(_as_text(item) for item in value if item not in (None, ""))
    return str(value).strip()


def contact_values(contact) -> dict[str, str]:
    """The values a contact gives the placeholders ("attr.<name>" for each custom attribute)."""
    name = (getattr(contact, "name", "") or "").strip()
    values = {
        "name": name,
        "first_name": name.split()[0] if name else "",
        "phone": getattr(contact, "phone", "") or "",
        "email": getattr(contact, "email", "") or "",
    }
    # Contact.attributes (issue 17a) may be absent or not a dict on an older row: read it defensively.
    attributes = getattr(contact, "attributes", None)
    if isinstance(attributes, Mapping):
        for key, value in attributes.items():
            values[f"attr.{key}"] = _as_text(value)
    return values


def _fold(text: str) -> str:
    return " ".join(text.split())


def render(text: str, values: Mapping[str, Any], *, escape: Callable[[str], str] | None = None,
           inline: bool = False) -> Rendered:  # fmt: skip
    """``text`` with its placeholders filled from ``values`` (a plain mapping, e.g. `contact_values`).

    ``escape`` is applied to every value put in (HTML); ``inline`` folds their whitespace. A required
    placeholder without a value is left as it was and listed in ``missing``. Raises PlaceholderError.
    """
    missing: list[str] = []

    def fill(match: re.Match) -> str:
        placeholder = parse(match.group(1))
        value = _as_text(values.get(placeholder.key))
        if not value:
            if placeholder.fallback is None:
                if placeholder.key not in missing:
                    missing.append(placeholder.key)
                return match.group(0)
            value = placeholder.fallback
        if inline:
            value = _fold(value)
        return escape(value) if escape else value

    return Rendered(PLACEHOLDER.sub(fill, text or ""), missing)


def _render_value(value: Any, values: Mapping[str, Any], missing: list[str]) -> Any:
    """A template parameter value (text, list or dict of texts) rendered inline; blank counts as missing."""
    if isinstance(value, str):
        result = render(value, values, inline=True)
        missing.extend(key for key in result.missing if key not in missing)
        if not result.missing and has_placeholders(value) and not result.text.strip():
            label = ", ".join(p.key for p in placeholders(value))
            if label not in missing:
                missing.append(label)
        return result.text
    if isinstance(value, Mapping):
        return {key: _render_value(item, values, missing) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_render_value(item, values, missing) for item in value]
    return value


@dataclass
class RenderedRequest:
    request: SendRequest
    missing: list[str]


def request_render(request: SendRequest, values: Mapping[str, Any]) -> RenderedRequest:
    """The request with every personalisable part rendered for one contact (no longer ``personalise``).

    Raises PlaceholderError for a placeholder not ours (the message is wrong, not the recipient)."""
    missing: list[str] = []

    def text(value: str, **options) -> str:
        result = render(value, values, **options)
        missing.extend(key for key in result.missing if key not in missing)
        return result.text

    rendered = dataclasses.replace(
        request,
        text=text(request.text),
        subject=text(request.subject, inline=True),
        html=text(request.html, escape=html_lib.escape),
        template_parameters=_render_value(request.template_parameters, values, missing),
        template_header=_render_value(request.template_header, values, missing),
        template_buttons=_render_value(request.template_buttons, values, missing),
        personalise=False,
    )
    return RenderedRequest(rendered, missing)


def missing_reason(missing: list[str]) -> str:
    keys = ", ".join(f"{{{{{key}}}}}" for key in missing)
    return f"the contact has no value for {keys} and the message gives no fallback"
