"""Creating and changing short links. Views, the API and the admin all come here; each change is audited."""

from __future__ import annotations

import secrets
import string
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.services import audit_record
from links.models import UTM_FIELDS, ShortLink
from links.redirect import targets
from links.validation import destination_validate, slug_validate

SLUG_ALPHABET = string.ascii_letters + string.digits
GENERATED_SLUG_LENGTH = 7  # 62^7 ≈ 3.5e12: not guessable by walking the space
MAX_UTM = 100


def slug_generate() -> str:
    return "".join(secrets.choice(SLUG_ALPHABET) for _ in range(GENERATED_SLUG_LENGTH))


def _clean_utm(utm: dict[str, str] | None) -> dict[str, str]:
    cleaned = {}
    for name, value in (utm or {}).items():
        if name not in UTM_FIELDS:
            raise ValidationError({name: f"{name} is not a UTM parameter ({', '.join(UTM_FIELDS)})."})
        value = (value or "").strip()
        if len(value) > MAX_UTM:
            raise ValidationError({name: f"{name} is longer than {MAX_UTM} characters."})
        cleaned[name] = value
    return cleaned


def _check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is not None and expires_at <= now:
        raise ValidationError({"expires_at": "The expiry must be in the future."})


def link_create(
    *,
    user,
    destination: str,
    slug: str = "",
    title: str = "",
    utm: dict[str, str] | None = None,
    expires_at: datetime | None = None,
    enabled: bool = True,
) -> ShortLink:
    """A new short link (a generated slug unless one is chosen). ValidationError says what to fix."""
    now = timezone.now()
    errors: dict[str, list[str]] = {}
    try:
        destination = destination_validate(destination)
    except ValidationError as exc:
        errors["destination"] = exc.messages
    if slug:
        try:
            slug = slug_validate(slug)
        except ValidationError as exc:
            errors["slug"] = exc.messages
        else:
            if ShortLink.objects.filter(slug__iexact=slug).exists():
                errors["slug"] = [f"The slug {slug!r} is taken."]
    if errors:
        raise ValidationError(errors)
    cleaned_utm = _clean_utm(utm)
    _check_expiry(expires_at, now)
    for _attempt in range(5):
        candidate = slug or slug_generate()
        try:
            with transaction.atomic():
                link = ShortLink(
                    slug=candidate,
                    destination=destination,
                    title=(title or "").strip()[:200],
                    expires_at=expires_at,
                    enabled=enabled,
                    created_by=user if getattr(user, "pk", None) else None,
                    created_at=now,
                    **cleaned_utm,
                )
                link.save(force_insert=True)
                audit_record(
                    user=user,
                    action="link.create",
                    resource_type="shortlink",
                    resource_id=link.pk,
                    details={"slug": link.slug, "destinationHost": link.destination.split("/")[2]},
                )
            return link
        except IntegrityError:
            if slug:
                raise ValidationError({"slug": [f"The slug {slug!r} is taken."]}) from None
    raise RuntimeError("could not find a free slug in 5 tries")


def link_update(
    *,
    link: ShortLink,
    user,
    destination: str | None = None,
    title: str | None = None,
    utm: dict[str, str] | None = None,
    expires_at: datetime | None | bool = False,
    enabled: bool | None = None,
) -> ShortLink:
    """Change what is given (``expires_at=None`` removes the expiry; False leaves it). Audited.
    Other web processes see the change within LINK_CACHE_SECONDS."""
    changed: list[str] = []
    if destination is not None:
        try:
            link.destination = destination_validate(destination)
        except ValidationError as exc:
            raise ValidationError({"destination": exc.messages}) from None
        changed.append("destination")
    if title is not None:
        link.title = title.strip()[:200]
        changed.append("title")
    for name, value in _clean_utm(utm).items():
        setattr(link, name, value)
        changed.append(name)
    if expires_at is not False:
        link.expires_at = expires_at  # a time already past expires the link now
        changed.append("expires_at")
    if enabled is not None:
        link.enabled = bool(enabled)
        changed.append("enabled")
    if not changed:
        return link
    with transaction.atomic():
        link.save(update_fields=[*changed, "updated_at"])
        audit_record(
            user=user,
            action="link.update",
            resource_type="shortlink",
            resource_id=link.pk,
            details={"slug": link.slug, "fields": changed, "enabled": link.enabled},
        )
    targets.clear()  # this process at once; the others within LINK_CACHE_SECONDS
    return link
