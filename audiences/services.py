"""Changing saved segments. The page, the API and the admin call these; each change is audited."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.services import audit_record
from audiences.models import Segment
from audiences.spec import spec_clean

NAME_TAKEN = "Another segment already has this name."


def _db_user(actor):
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def _clean(name: Any, description: Any, spec: Any, *, exclude: Segment | None = None) -> dict:
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    if not isinstance(name, str) or not " ".join(name.split()):
        errors["name"] = ["Give the segment a name."]
    else:
        cleaned["name"] = " ".join(name.split())[:120]
        taken = Segment.objects.filter(name__iexact=cleaned["name"])
        if exclude is not None:
            taken = taken.exclude(pk=exclude.pk)
        if taken.exists():
            errors["name"] = [NAME_TAKEN]
    if description is not None and not isinstance(description, str):
        errors["description"] = ["The description is text."]
    else:
        cleaned["description"] = (description or "").strip()[:2000]
    try:
        cleaned["spec"] = spec_clean(spec)
    except ValidationError as exc:
        for key, messages in exc.message_dict.items():
            errors.setdefault(key, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    return cleaned


def _save(segment: Segment) -> None:
    try:
        with transaction.atomic():
            segment.save()
    except IntegrityError as exc:  # a race on the unique name
        raise ValidationError({"name": [NAME_TAKEN]}) from exc


@transaction.atomic
def segment_create(*, name: Any, spec: Any, description: Any = "", actor) -> Segment:
    cleaned = _clean(name, description, spec)
    segment = Segment(**cleaned, created_by=_db_user(actor))
    _save(segment)
    audit_record(
        user=_db_user(actor),
        action="segment.create",
        resource_type="segment",
        resource_id=segment.pk,
        details={"name": segment.name, "spec": segment.spec},
    )
    return segment


@transaction.atomic
def segment_update(*, segment: Segment, name: Any, spec: Any, description: Any = "", actor) -> Segment:
    cleaned = _clean(name, description, spec, exclude=segment)
    before = {"name": segment.name, "spec": segment.spec}
    for field, value in cleaned.items():
        setattr(segment, field, value)
    _save(segment)
    audit_record(
        user=_db_user(actor),
        action="segment.update",
        resource_type="segment",
        resource_id=segment.pk,
        details={"before": before, "after": {"name": segment.name, "spec": segment.spec}},
    )
    return segment


@transaction.atomic
def segment_delete(*, segment: Segment, actor) -> None:
    audit_record(
        user=_db_user(actor),
        action="segment.delete",
        resource_type="segment",
        resource_id=segment.pk,
        details={"name": segment.name},
    )
    segment.delete()
