from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from contacts.search import build_search_text


class Channel(models.TextChoices):
    WHATSAPP = "whatsapp", "WhatsApp"
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"
    VOICE = "voice", "Voice"
    RCS = "rcs", "RCS"


class ConsentSource(models.TextChoices):
    ADMIN = "admin", "Admin"
    API = "api", "API"
    IMPORT = "import", "Import"
    UI = "ui", "Operator pages"
    INBOUND_KEYWORD = "inbound_keyword", "Inbound keyword"
    INBOUND = "inbound", "Inbound message"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe link"
    FORM = "form", "Form"


class AttributeType(models.TextChoices):
    TEXT = "text", "Text"
    NUMBER = "number", "Number"
    DATE = "date", "Date"
    BOOLEAN = "boolean", "Yes / no"
    CHOICE = "choice", "Choice"


class Tag(models.Model):
    """A label on contacts ("vip", "pune-store"); a contact has any number of them.

    Names are kept lower-case and unique (contacts.attributes.tag_name_clean), so "VIP" and "vip"
    are one tag.
    """

    name = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AttributeDefinition(models.Model):
    """A declared custom attribute: Contact.attributes holds values only for declared names, each
    checked against its type on write (contacts.attributes.contact_attributes_clean).

    Stored in JSON as: text and choice → string, number → number, date → "YYYY-MM-DD" (ISO text sorts
    as dates do, so before/after compare the text), boolean → true/false.
    """

    name = models.CharField(
        max_length=40,
        unique=True,
        validators=[
            RegexValidator(
                r"^[a-z][a-z0-9_]{0,39}$",
                "Use lower-case letters, digits and underscores, starting with a letter (e.g. city, plan_2024).",
            )
        ],
        help_text="The key in contact attributes, import/export columns (attr.<name>) and placeholders.",
    )
    label = models.CharField(max_length=100, blank=True)
    type = models.CharField(max_length=16, choices=AttributeType.choices, default=AttributeType.TEXT)
    choices = models.JSONField(default=list, blank=True, help_text="The allowed values of a choice attribute.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.label or self.name

    def clean(self) -> None:
        if self.type == AttributeType.CHOICE:
            if (
                not isinstance(self.choices, list)
                or not self.choices
                or not all(isinstance(c, str) and c.strip() for c in self.choices)
            ):
                raise ValidationError({"choices": "A choice attribute needs a list of non-empty text values."})
            if len(set(self.choices)) != len(self.choices):
                raise ValidationError({"choices": "The choices repeat a value."})
        elif self.choices:
            raise ValidationError({"choices": "Only a choice attribute has choices."})


class ContactQuerySet(models.QuerySet):
    def active(self):
        return self.filter(deleted_at__isnull=True)


class Contact(models.Model):
    """Someone the business may talk to, with their consent per channel.

    Opt-ins change only through contacts.services, which writes the consent history.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name="contact id")
    name = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=20, null=True, blank=True, help_text="E.164, e.g. +919876543210")
    email = models.EmailField(max_length=254, null=True, blank=True)
    # A WhatsApp user who hides their number writes from a business-scoped user id ("US.2685…"):
    # such a contact is known by that id alone until they share a phone or an email.
    whatsapp_user_id = models.CharField(
        max_length=64, null=True, blank=True, editable=False, verbose_name="WhatsApp user id (BSUID)"
    )
    opt_in_whatsapp = models.BooleanField(default=False, verbose_name="WhatsApp opt-in")
    opt_in_sms = models.BooleanField(default=False, verbose_name="SMS opt-in")
    opt_in_email = models.BooleanField(default=False, verbose_name="Email opt-in")
    # db_default too: rows written outside the ORM (raw inserts, COPY) are opted out, never NULL.
    opt_in_voice = models.BooleanField(default=False, db_default=False, verbose_name="Voice opt-in")
    opt_in_rcs = models.BooleanField(default=False, db_default=False, verbose_name="RCS opt-in")
    last_inbound_message_at = models.DateTimeField(null=True, blank=True)
    # Values of declared attributes (AttributeDefinition), keyed by name; written only through
    # contacts.attributes, which checks each value against its definition.
    # db_default: rows written by raw SQL (bulk loads, benchmarks) get an empty dict too.
    attributes = models.JSONField(default=dict, db_default={}, blank=True)
    tags = models.ManyToManyField(Tag, through="ContactTag", related_name="contacts", blank=True)
    # The ids of `tags`, sorted: a copy kept by contacts.attributes (the one writer of ContactTag) so a
    # segment tests tags on the contact row itself (GIN-indexed jsonb containment on PostgreSQL)
    # instead of joining a million contacts to their tag rows.
    tag_ids = models.JSONField(default=list, db_default=[], blank=True, editable=False)
    # Lower-case, accent-free name + email + phone digits: one trigram-indexed column for search.
    search_text = models.TextField(blank=True, default="", editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = ContactQuerySet.as_manager()

    class Meta:
        # Newest first; the id breaks ties so pages never repeat or skip a contact.
        ordering = ["-created_at", "-id"]
        constraints = [
            # An empty string is not a way to reach anyone: the services store "no phone" as NULL.
            models.CheckConstraint(
                condition=(Q(phone__isnull=False) & ~Q(phone=""))
                | (Q(email__isnull=False) & ~Q(email=""))
                | (Q(whatsapp_user_id__isnull=False) & ~Q(whatsapp_user_id="")),
                name="contact_has_phone_or_email",
                violation_error_message="A contact needs a phone number or an email address.",
            ),
            models.CheckConstraint(
                condition=Q(phone__isnull=True) | Q(phone__regex=r"^\+[1-9][0-9]{6,14}$"),
                name="contact_phone_is_e164",
                violation_error_message="The phone number must be stored in E.164 form, e.g. +919876543210.",
            ),
            models.UniqueConstraint(
                fields=["phone"],
                condition=Q(deleted_at__isnull=True, phone__isnull=False),
                name="contact_phone_unique_when_active",
                violation_error_message="Another contact already has this phone number.",
            ),
            models.UniqueConstraint(
                fields=["whatsapp_user_id"],
                condition=Q(deleted_at__isnull=True, whatsapp_user_id__isnull=False),
                name="contact_whatsapp_user_id_unique_when_active",
                violation_error_message="Another contact already has this WhatsApp user id.",
            ),
            models.UniqueConstraint(
                fields=["email"],
                condition=Q(deleted_at__isnull=True, email__isnull=False),
                name="contact_email_unique_when_active",
                violation_error_message="Another contact already has this email address.",
            ),
        ]
        # The list's order, for contacts not deleted: the first page reads 50 index entries.
        indexes = [
            models.Index(
                fields=["-created_at", "-id"], name="contact_active_newest", condition=Q(deleted_at__isnull=True)
            )
        ]
        permissions = [
            ("restore_contact", "Can restore a deleted contact"),
            ("export_contact", "Can export contacts"),
        ]

    def __str__(self) -> str:
        return self.name or self.phone or self.email or self.whatsapp_user_id or str(self.id)

    def save(self, *args, **kwargs):
        # search_text is derived from name, phone and email; computing it here keeps it right for
        # every writer (services, admin, fixtures). bulk_create/update() bypass this: don't use them.
        self.search_text = build_search_text(name=self.name, phone=self.phone, email=self.email)
        if self.whatsapp_user_id:
            self.search_text = f"{self.search_text} {self.whatsapp_user_id.lower()}".strip()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"name", "phone", "email", "whatsapp_user_id"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "search_text"}
        super().save(*args, **kwargs)

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def opt_in(self, channel: str) -> bool:
        return bool(getattr(self, f"opt_in_{channel}"))


class ContactTag(models.Model):
    """One tag on one contact (the explicit through table, so bulk tagging inserts rows directly)."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "tag"], name="contact_tag_once")]
        # "Contacts with tag X" (segments, audiences) reads this index, the constraint the other way.
        indexes = [models.Index(fields=["tag", "contact"], name="contact_tag_by_tag")]

    def __str__(self) -> str:
        return f"{self.contact_id} #{self.tag_id}"


class ConsentEvent(models.Model):
    """One change of one channel's opt-in. Immutable: the history is evidence."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="consent_events")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    old_value = models.BooleanField(null=True)
    new_value = models.BooleanField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=254, blank=True)
    source = models.CharField(max_length=32, choices=ConsentSource.choices)
    changed_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Evidence of how consent was given where the source keeps it (a web form: the form, its version,
    # the exact wording shown, when, the source address and the user agent).
    proof = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-changed_at"]
        indexes = [models.Index(fields=["contact", "-changed_at"])]

    def __str__(self) -> str:
        return f"{self.contact_id} {self.channel}: {self.old_value} → {self.new_value} ({self.source})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Consent history is immutable.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Consent history is immutable.")


class ContactImportJob(models.Model):
    """One CSV import, run by a Celery worker (contacts.tasks) from the file kept in S3.

    The page and the admin create it after the upload; the worker updates the counts after every
    batch, so the page's progress bar reads them; ``bad_rows`` is the report (every rejected row
    with its number, line, column(s) and reason).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    file_name = models.CharField(max_length=255)
    s3_key = models.CharField(max_length=512)
    size = models.PositiveBigIntegerField()
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    rows_read = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    bad_rows = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    # The running worker's lease: renewed at every batch; older than CONTACTS_IMPORT_LEASE_SECONDS means
    # the worker died and the sweeper fails the job (contacts.import_jobs.contact_import_jobs_sweep).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="contacts_import_job_lease")]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.total_rows:
            return 0
        return min(100, int(self.rows_read * 100 / self.total_rows))
