"""Consent-capture forms. A Form is what staff manage; what a visitor sees is one FormVersion of it.

Versions are immutable: editing anything a visitor reads (title, intro, fields, consent wording) makes
a new version, so every submission keeps the exact wording it was given (the proof of consent).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from contacts.models import Channel, Contact


class Ask(models.TextChoices):
    """Whether the form asks for a field, and whether it must be filled."""

    OFF = "off", "Not asked"
    OPTIONAL = "optional", "Optional"
    REQUIRED = "required", "Required"


class Form(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=80, unique=True, help_text="The public address: /f/<slug>")
    name = models.CharField(max_length=200, help_text="For staff; visitors see the version's title.")
    current_version = models.ForeignKey(
        "FormVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    is_published = models.BooleanField(default=True, help_text="Unpublished forms answer 404 at /f/<slug>.")
    email_double_opt_in = models.BooleanField(
        default=True,
        help_text="Email consent becomes true only when the link in a confirmation email is followed.",
    )
    embed_origins = models.TextField(
        blank=True,
        help_text="Sites that may show this form in an iframe, one origin per line (https://www.example.org).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def embed_origin_list(self) -> list[str]:
        return [line.strip() for line in self.embed_origins.splitlines() if line.strip()]


class FormVersion(models.Model):
    """What a visitor reads and answers. Never changed once written (submissions point at it)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    form = models.ForeignKey(Form, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    intro = models.TextField(blank=True)
    ask_name = models.CharField(max_length=16, choices=Ask.choices, default=Ask.OPTIONAL)
    ask_phone = models.CharField(max_length=16, choices=Ask.choices, default=Ask.OPTIONAL)
    ask_email = models.CharField(max_length=16, choices=Ask.choices, default=Ask.OPTIONAL)
    # Declared contact attributes asked for, by attribute name (contacts' AttributeDefinition).
    attributes = models.JSONField(default=list, blank=True)
    # The exact consent wording shown next to each channel's checkbox; empty: no checkbox for that channel.
    consent_whatsapp = models.TextField(blank=True, verbose_name="WhatsApp consent wording")
    consent_sms = models.TextField(blank=True, verbose_name="SMS consent wording")
    consent_email = models.TextField(blank=True, verbose_name="Email consent wording")
    consent_voice = models.TextField(blank=True, verbose_name="Voice call consent wording")
    consent_rcs = models.TextField(blank=True, verbose_name="RCS consent wording")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["form", "-number"]
        constraints = [models.UniqueConstraint(fields=["form", "number"], name="webforms_version_number_unique")]

    def __str__(self) -> str:
        return f"{self.form} v{self.number}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("A form version is immutable: edit the form to make a new version.")
        super().save(*args, **kwargs)

    def consent_wording(self) -> dict[str, str]:
        """{channel: wording} for the channels this version offers a checkbox for, in a fixed order."""
        wording = {
            Channel.WHATSAPP: self.consent_whatsapp,
            Channel.SMS: self.consent_sms,
            Channel.EMAIL: self.consent_email,
            Channel.VOICE: self.consent_voice,
            Channel.RCS: self.consent_rcs,
        }
        return {str(channel): text for channel, text in wording.items() if text.strip()}

    def consent_wording_labelled(self) -> list[tuple[str, str]]:
        """(channel label, wording) for the pages."""
        return [(Channel(channel).label, text) for channel, text in self.consent_wording().items()]


class FormSubmission(models.Model):
    """One accepted submission: what was typed, what was ticked against which wording, and from where."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    form = models.ForeignKey(Form, on_delete=models.PROTECT, related_name="submissions")
    version = models.ForeignKey(FormVersion, on_delete=models.PROTECT, related_name="submissions")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="form_submissions")
    contact_created = models.BooleanField(default=False)
    # What the visitor typed (name, phone, email, attributes), normalised.
    data = models.JSONField(default=dict, blank=True)
    # {channel: {"wording": ..., "outcome": given | already | pending_confirmation | not_applied, "detail": ...}}
    # for every box ticked. Unticked boxes are absent: they never change consent.
    consents = models.JSONField(default=dict, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["form", "-created_at"], name="webforms_submission_recent")]
        permissions = [("export_formsubmission", "Can export form submissions")]

    def __str__(self) -> str:
        return f"{self.form} submission {self.created_at:%Y-%m-%d %H:%M}"


class EmailConfirmation(models.Model):
    """A pending email double opt-in: the confirmation email the gate lets through (messaging.safety).

    The gate allows exactly this email (``subject`` and ``text`` as stored) to ``email`` without email
    consent, while the request is unconfirmed and less than 24 hours old, and only when no other
    confirmation went to the same address in the last 24 hours. One message per confirmation
    (messaging.Message.email_confirmation is one-to-one).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    submission = models.OneToOneField(FormSubmission, on_delete=models.PROTECT, related_name="email_confirmation")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="+")
    email = models.EmailField(max_length=254)
    subject = models.CharField(max_length=200)
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # Who followed the link: kept with the consent as proof.
    confirmed_ip = models.GenericIPAddressField(null=True, blank=True)
    confirmed_user_agent = models.CharField(max_length=512, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["email", "-emailed_at"], name="webforms_confirm_address", condition=Q(emailed_at__isnull=False)
            )
        ]

    def __str__(self) -> str:
        state = "confirmed" if self.confirmed_at else "pending"
        return f"email confirmation {self.pk} ({state})"
