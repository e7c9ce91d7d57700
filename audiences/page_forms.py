"""The segment builder's form fields → a spec (audiences.spec checks it). Parsing only, no rules."""

from __future__ import annotations

from django.http import QueryDict

from contacts.models import Channel

ATTRIBUTE_ROWS = 4
TIME_FIELDS = ("lastInboundAfter", "lastInboundBefore", "createdAfter", "createdBefore")


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]


def spec_from_form(data: QueryDict) -> dict:
    spec: dict = {}
    for key in ("tagsAny", "tagsAll", "tagsNone"):
        if names := _names(data.get(key, "")):
            spec[key] = names
    conditions = []
    for row in range(ATTRIBUTE_ROWS):
        name, op = data.get(f"attr-{row}-name", ""), data.get(f"attr-{row}-op", "")
        if not name:
            continue
        condition = {"name": name, "op": op}
        if op not in ("empty", "notEmpty"):
            condition["value"] = data.get(f"attr-{row}-value", "")
        conditions.append(condition)
    if conditions:
        spec["attributes"] = conditions
    consent = {}
    for channel in Channel.values:
        value = data.get(f"consent-{channel}", "")
        if value in ("yes", "no"):
            consent[channel] = value == "yes"
    if consent:
        spec["consent"] = consent
    if addresses := [channel for channel in Channel.values if data.get(f"address-{channel}")]:
        spec["hasAddress"] = addresses
    for key in TIME_FIELDS:
        if data.get(key, "").strip():
            spec[key] = data[key].strip()
    window = data.get("window", "")
    if window in ("inside", "outside"):
        spec["inWhatsAppWindow"] = window == "inside"
    return spec


def form_from_spec(spec: dict) -> dict:
    """The builder's field values for a saved spec (the inverse of spec_from_form)."""
    form = {key: ", ".join(spec.get(key, [])) for key in ("tagsAny", "tagsAll", "tagsNone")}
    rows = list(spec.get("attributes", []))
    form["attributes"] = [
        {"name": c.get("name", ""), "op": c.get("op", ""), "value": _value_text(c.get("value"))} for c in rows
    ] + [{"name": "", "op": "", "value": ""}] * max(0, ATTRIBUTE_ROWS - len(rows))
    form["consent"] = {
        channel: ("yes" if spec.get("consent", {}).get(channel) else "no") if channel in spec.get("consent", {}) else ""
        for channel in Channel.values
    }
    form["hasAddress"] = spec.get("hasAddress", [])
    for key in TIME_FIELDS:
        form[key] = spec.get(key, "")
    window = spec.get("inWhatsAppWindow")
    form["window"] = "" if window is None else ("inside" if window else "outside")
    return form


def _value_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
