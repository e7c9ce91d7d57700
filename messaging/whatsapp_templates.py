"""WhatsApp message templates: placeholders, parameter checks, rendering, and the sync with AWS.

Placeholders are read from the template's BODY text: positional ``{{1}} {{2}}`` (numbered 1..n) or
named ``{{first_name}}`` (lower case, digits, underscore). Parameters are given the same way: a list
of texts for positional templates, an object name → text for named ones; number and names must
match exactly. The gate (messaging.safety) refuses any mismatch with TEMPLATE_INVALID.

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


def template_unsupported_problem(template: WhatsAppTemplate) -> str | None:
    """Templates whose header or buttons need parameters cannot be sent from here (yet): say so now."""
    for component in template.components or []:
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            fmt = str(component.get("format", "TEXT")).upper()
            if fmt in ("IMAGE", "VIDEO", "DOCUMENT", "LOCATION"):
                return f"template {template.name} has a {fmt.lower()} header, which needs a parameter"
            if PLACEHOLDER.search(component.get("text", "") or ""):
                return f"template {template.name} has a header placeholder, which needs a parameter"
        if kind == "BUTTONS":
            for button in component.get("buttons", []) or []:
                if PLACEHOLDER.search(button.get("url", "") or "") or button.get("type", "").upper() in (
                    "COPY_CODE",
                    "FLOW",
                    "CATALOG",
                    "MPM",
                ):
                    return f"template {template.name} has a {button.get('type', 'dynamic')} button needing a parameter"
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
