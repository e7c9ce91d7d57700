"""WhatsApp message templates: placeholders, parameter checks, rendering, and the sync with AWS.

Placeholders are read from the template's BODY text: positional ``{{1}} {{2}}`` (numbered 1..n) or
named ``{{first_name}}`` (lower case, digits, underscore). Parameters are given the same way: a list
of texts for positional templates, an object name → text for named ones; number and names must
match exactly. The gate (messaging.safety) refuses any mismatch with TEMPLATE_INVALID.

Header and buttons (`template_needs` reads them from the components): a TEXT header with a placeholder
takes one text parameter (``template_header``); an IMAGE, VIDEO or DOCUMENT header takes the message's
media file (uploaded to Meta like a media message's); a URL button whose URL has a placeholder takes its
suffix and a QUICK_REPLY button may take a payload (``template_buttons``, by button index). Location
headers and copy-code, flow, catalog and OTP buttons cannot be filled here: refused.

`whatsapp_template_sync` keeps WhatsAppTemplate rows in step with AWS: every linked WABA
(ListLinkedWhatsAppBusinessAccounts), its templates (ListWhatsAppMessageTemplates) and each one's
definition (GetWhatsAppMessageTemplate) for the body and components. Templates that disappeared
from a WABA are set DISABLED (never deleted: messages refer to them by name). Admins may edit rows;
the next sync overwrites what Meta owns (status, category, body, components). Run it with
``manage.py sync_whatsapp_templates`` or the periodic task ``messaging.sync_whatsapp_templates``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from messaging.channels import whatsapp
from messaging.models import TemplateStatus, WhatsAppTemplate
from wecare.errors import InvalidRequest

logger = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
NAMED = re.compile(r"^[a-z_][a-z0-9_]*$")
PARAMETER_MAX_CHARS = 1024  # Meta's template body limit; a parameter cannot be longer
HEADER_PARAMETER_MAX_CHARS = 60  # Meta's header text limit
BUTTON_PARAMETER_MAX_CHARS = 2000  # a URL (Meta's button URL limit); a payload is far shorter in practice
POSITIONAL = "positional"
NAMED_FORMAT = "named"

# Meta statuses we do not model map to the nearest one; only APPROVED may be sent.
STATUS_MAP = {
    "APPROVED": TemplateStatus.APPROVED,
    "PENDING": TemplateStatus.PENDING,
    "IN_APPEAL": TemplateStatus.PENDING,
    "REJECTED": TemplateStatus.REJECTED,
    "PAUSED": TemplateStatus.PAUSED,
    "LIMIT_EXCEEDED": TemplateStatus.PAUSED,
    "DISABLED": TemplateStatus.DISABLED,
    "PENDING_DELETION": TemplateStatus.DISABLED,
    "DELETED": TemplateStatus.DISABLED,
    "ARCHIVED": TemplateStatus.DISABLED,
}


class TemplateDefinitionError(InvalidRequest, ValueError):
    """The template's own text is unusable (mixed or malformed placeholders)."""


def template_placeholders(body: str) -> tuple[str, list[str]]:
    """(format, names in order of first appearance) of a body text; raises TemplateDefinitionError."""
    names: list[str] = []
    for raw in PLACEHOLDER.findall(body or ""):
        if raw not in names:
            names.append(raw)
    if not names:
        return POSITIONAL, []
    if all(name.isdigit() for name in names):
        numbers = sorted(int(name) for name in names)
        if numbers != list(range(1, len(numbers) + 1)):
            raise TemplateDefinitionError(f"positional placeholders must be {{{{1}}}}..{{{{n}}}}, found {names}")
        return POSITIONAL, [str(n) for n in numbers]
    if any(name.isdigit() for name in names):
        raise TemplateDefinitionError(f"placeholders mix positional and named: {names}")
    bad = [name for name in names if not NAMED.match(name)]
    if bad:
        raise TemplateDefinitionError(f"malformed placeholders: {bad}")
    return NAMED_FORMAT, names


def _value_problem(label: str, value) -> str | None:
    if not isinstance(value, str):
        return f"{label} must be text, not {type(value).__name__}"
    if not value.strip():
        return f"{label} is empty"
    # Meta refuses parameters with new lines, tabs or more than four consecutive spaces (#132018).
    if "\n" in value or "\r" in value or "\t" in value:
        return f"{label} contains a line break or tab"
    if "     " in value:
        return f"{label} contains more than four consecutive spaces"
    if len(value) > PARAMETER_MAX_CHARS:
        return f"{label} is longer than {PARAMETER_MAX_CHARS} characters"
    return None


def template_parameter_problem(template: WhatsAppTemplate, parameters) -> str | None:
    """Why ``parameters`` cannot fill ``template``'s placeholders, or None if they match."""
    try:
        fmt, names = template_placeholders(template.body)
    except TemplateDefinitionError as exc:
        return f"template {template.name} ({template.language}) is malformed: {exc}"
    if names and template.parameter_format and template.parameter_format != fmt:
        return (
            f"template {template.name} is recorded as {template.parameter_format} but its body uses "
            f"{fmt} placeholders: sync the templates"
        )
    if parameters in (None, "", [], {}):
        parameters = {} if fmt == NAMED_FORMAT else []
    if fmt == POSITIONAL:
        if not isinstance(parameters, list | tuple):
            return f"template {template.name} takes positional parameters: give a list of {len(names)} texts"
        if len(parameters) != len(names):
            return f"template {template.name} has {len(names)} placeholder(s), {len(parameters)} parameter(s) given"
        for index, value in enumerate(parameters, start=1):
            if problem := _value_problem(f"parameter {{{{{index}}}}}", value):
                return problem
        return None
    if not isinstance(parameters, dict):
        return f"template {template.name} takes named parameters: give an object with {', '.join(names)}"
    missing = [name for name in names if name not in parameters]
    extra = [name for name in parameters if name not in names]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unknown {', '.join(map(str, extra))}")
        return f"template {template.name} parameters do not match its placeholders: {'; '.join(parts)}"
    for name in names:
        if problem := _value_problem(f"parameter {{{{{name}}}}}", parameters[name]):
            return problem
    return None


MEDIA_HEADERS = ("IMAGE", "VIDEO", "DOCUMENT")
# Buttons whose parameter we fill: a URL with a placeholder (the suffix) and a quick reply (its payload).
UNSUPPORTED_BUTTONS = ("COPY_CODE", "FLOW", "CATALOG", "MPM", "OTP")


@dataclass(frozen=True)
class TemplateButton:
    index: int
    kind: str  # "url" (needs the URL suffix) or "quick_reply" (an optional payload)
    required: bool


@dataclass(frozen=True)
class TemplateNeeds:
    """What a template's header and buttons take besides its body parameters."""

    header_format: str = ""  # "", TEXT, IMAGE, VIDEO, DOCUMENT
    header_placeholder: str = ""  # the header text's placeholder ("1" or a name), if it has one
    buttons: tuple[TemplateButton, ...] = ()
    problem: str = ""  # a header or button we cannot fill (location header, copy-code button...)

    @property
    def media_type(self) -> str:
        return self.header_format.lower() if self.header_format in MEDIA_HEADERS else ""


def template_needs(template: WhatsAppTemplate) -> TemplateNeeds:
    """Read the header and buttons from the template's components (as Meta defines them)."""
    header_format, header_placeholder, buttons, problem = "", "", [], ""
    for component in template.components or []:
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            header_format = str(component.get("format", "TEXT") or "TEXT").upper()
            if header_format == "TEXT":
                names = PLACEHOLDER.findall(component.get("text", "") or "")
                if len(set(names)) > 1:
                    problem = f"template {template.name} has more than one header placeholder"
                header_placeholder = names[0] if names else ""
            elif header_format not in MEDIA_HEADERS:
                what = header_format.lower()
                problem = f"template {template.name} has a {what} header, which cannot be sent from here"
        if kind == "BUTTONS":
            for index, button in enumerate(component.get("buttons", []) or []):
                button_type = str(button.get("type", "")).upper()
                if button_type == "URL" and PLACEHOLDER.search(button.get("url", "") or ""):
                    buttons.append(TemplateButton(index, "url", True))
                elif button_type == "QUICK_REPLY":
                    buttons.append(TemplateButton(index, "quick_reply", False))
                elif button_type in UNSUPPORTED_BUTTONS:
                    problem = f"template {template.name} has a {button_type} button, which cannot be sent from here"
    return TemplateNeeds(header_format, header_placeholder, tuple(buttons), problem)


def template_extras_problem(template: WhatsAppTemplate, *, header: str, buttons, media_type: str | None) -> str | None:
    """Why the header parameter, the media and the button parameters do not fit the template, or None.

    ``media_type`` is the WhatsApp media type of the request's file (image, video, document), None
    without a file."""
    needs = template_needs(template)
    if needs.problem:
        return needs.problem
    if needs.media_type:
        if header:
            return f"template {template.name} has a {needs.media_type} header: give a file, not header text"
        if media_type is None:
            return f"template {template.name} has a {needs.media_type} header: give the {needs.media_type} file"
        if media_type != needs.media_type:
            return f"template {template.name} has a {needs.media_type} header, the file given is a {media_type}"
    elif media_type is not None:
        return f"template {template.name} has no media header: it takes no file"
    if needs.header_placeholder:
        if problem := _value_problem("the header parameter", header):
            return f"template {template.name}: {problem}"
        if len(header) > HEADER_PARAMETER_MAX_CHARS:
            return f"template {template.name}: the header parameter is longer than {HEADER_PARAMETER_MAX_CHARS}"
    elif header:
        return f"template {template.name} has no header placeholder: it takes no header text"
    buttons = buttons or {}
    if not isinstance(buttons, dict):
        return 'button parameters are an object by button index, e.g. {"0": "summer-sale"}'
    known = {str(button.index): button for button in needs.buttons}
    unknown = [key for key in buttons if str(key) not in known]
    if unknown:
        return f"template {template.name} has no button taking a parameter at index {', '.join(map(str, unknown))}"
    for key, button in known.items():
        value = buttons.get(key, buttons.get(button.index))
        if value in (None, "") and not button.required:
            continue
        label = "URL suffix" if button.kind == "url" else "quick-reply payload"
        if problem := _value_problem(f"the {label} of button {key}", value):
            return f"template {template.name}: {problem}"
        if len(value) > BUTTON_PARAMETER_MAX_CHARS:
            return f"template {template.name}: the {label} of button {key} is longer than {BUTTON_PARAMETER_MAX_CHARS}"
    return None


def template_render(template: WhatsAppTemplate, parameters) -> str:
    """The body as the recipient reads it (stored as the message's content)."""
    if isinstance(parameters, dict):
        values = {str(k): str(v) for k, v in parameters.items()}
    else:
        values = {str(index): str(value) for index, value in enumerate(parameters or [], start=1)}
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template.body or "")


# --- Sync with AWS -------------------------------------------------------------------------------


@dataclass
class SyncResult:
    wabas: int = 0
    created: int = 0
    updated: int = 0
    disabled: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "wabas": self.wabas,
            "created": self.created,
            "updated": self.updated,
            "disabled": self.disabled,
            "errors": self.errors,
        }


def _body_and_format(definition: dict) -> tuple[str, list[dict], str]:
    components = definition.get("components") or []
    body = next((c.get("text", "") for c in components if str(c.get("type", "")).upper() == "BODY"), "")
    declared = str(definition.get("parameter_format", "") or "").lower()
    return body, components, declared


def whatsapp_template_sync() -> SyncResult:
    """Bring WhatsAppTemplate rows in line with every linked WABA's templates."""
    result = SyncResult()
    seen: set[tuple[str, str, str]] = set()
    synced_wabas: list[str] = []
    now = timezone.now()
    for account in whatsapp.list_linked_accounts():
        waba_id = account["id"]
        result.wabas += 1
        try:
            summaries = whatsapp.list_templates(waba_id)
        except Exception as exc:  # one WABA failing must not stop the others
            result.errors.append(f"{waba_id}: {exc}")
            logger.exception("template sync: listing templates of %s failed", waba_id)
            continue
        synced_wabas.append(waba_id)
        for summary in summaries:
            name, language = summary["templateName"], summary.get("templateLanguage", "")
            try:
                definition = whatsapp.get_template(waba_id, meta_template_id=summary.get("metaTemplateId", ""))
            except Exception as exc:
                result.errors.append(f"{waba_id} {name} ({language}): {exc}")
                logger.exception("template sync: reading %s (%s) failed", name, language)
                continue
            body, components, declared = _body_and_format(definition)
            try:
                fmt, placeholders = template_placeholders(body)
            except TemplateDefinitionError as exc:
                result.errors.append(f"{name} ({language}): {exc}")
                fmt, placeholders = (declared or POSITIONAL), []
            status = STATUS_MAP.get(str(summary.get("templateStatus", "")).upper(), TemplateStatus.PENDING)
            values = {
                "category": summary.get("templateCategory", "") or definition.get("category", ""),
                "status": status,
                "waba_id": waba_id,
                "meta_template_id": summary.get("metaTemplateId", "") or str(definition.get("id", "")),
                "body": body,
                "body_parameters": placeholders,
                "parameter_format": declared if declared in (POSITIONAL, NAMED_FORMAT) else fmt,
                "components": components,
                "synced_at": now,
            }
            with transaction.atomic():
                _, created = WhatsAppTemplate.objects.update_or_create(name=name, language=language, defaults=values)
            result.created += created
            result.updated += not created
            seen.add((waba_id, name, language))
    # Gone from a WABA we could read: no longer sendable.
    for row in WhatsAppTemplate.objects.filter(waba_id__in=synced_wabas).exclude(status=TemplateStatus.DISABLED):
        if (row.waba_id, row.name, row.language) not in seen:
            row.status = TemplateStatus.DISABLED
            row.synced_at = now
            row.save(update_fields=["status", "synced_at", "updated_at"])
            result.disabled += 1
    logger.info("template sync: %s", result.as_dict())
    return result
