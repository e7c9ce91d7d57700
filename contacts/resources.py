"""The admin's CSV export of contacts (django-import-export), and the column rules every import shares.

The import itself is contacts.importing (batched; run by the page, the admin and the command).

Columns use the API's names: contactId, name, phone, email, optInWhatsApp, optInSms, optInEmail,
optInVoice, optInRcs
(read on import), and lastInboundMessageAt, createdAt, updatedAt, deletedAt (export only).

Import rules:
- a row without contactId creates a contact; a row with one updates that (active) contact;
- every row goes through contacts.services, so phones are normalised, the phone-or-email and
  uniqueness rules hold, and every opt-in given is written to the consent history with source
  ``import``;
- an empty cell means "not given": opt-ins stay false (or unchanged), fields stay unchanged;
- opt-in cells are ``true`` or ``false`` (any case); anything else rejects the row;
- a bad row is reported with its number and reason and the good rows are kept; an unknown column
  stops the whole file (it is most likely a misspelt opt-in column whose values would be lost).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from import_export import fields, resources, widgets
from import_export.results import RowResult

from contacts.models import ConsentSource, Contact
from contacts.phones import normalize_phone
from contacts.services import contact_create, contact_update

IMPORT_COLUMNS = (
    "contactId",
    "name",
    "phone",
    "email",
    "optInWhatsApp",
    "optInSms",
    "optInEmail",
    "optInVoice",
    "optInRcs",
)
# Besides those: "tags" (names separated by ";" or ",": added to the contact's tags) and one
# "attr.<name>" column per declared attribute (contacts.AttributeDefinition), in both directions.
TAGS_COLUMN = "tags"
ATTRIBUTE_PREFIX = "attr."
EXPORT_ONLY_COLUMNS = ("lastInboundMessageAt", "createdAt", "updatedAt", "deletedAt")
OPT_IN_COLUMNS = {
    "optInWhatsApp": "opt_in_whatsapp",
    "optInSms": "opt_in_sms",
    "optInEmail": "opt_in_email",
    "optInVoice": "opt_in_voice",
    "optInRcs": "opt_in_rcs",
}
# Model field (as services report errors) → CSV column.
COLUMN_FOR_FIELD = {"name": "name", "phone": "phone", "email": "email", **{v: k for k, v in OPT_IN_COLUMNS.items()}}


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (e.g. an unknown column)."""


class StrictBooleanWidget(widgets.Widget):
    """``true``/``false`` (any case) in, ``true``/``false`` out; empty means not given."""

    def clean(self, value, row=None, **kwargs):
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text == "":
            return None
        if text == "true":
            return True
        if text == "false":
            return False
        raise ValueError(f"{value!r} is not a boolean: write true or false, or leave the cell empty.")

    def render(self, value, obj=None, **kwargs):
        if value is None:
            return ""
        return "true" if value else "false"


class IsoDateTimeWidget(widgets.Widget):
    def render(self, value, obj=None, **kwargs):
        return value.isoformat() if value else ""


def check_headers(headers: list[str] | None) -> None:
    """Refuse a file whose columns we do not know, or that has neither phone nor email."""
    from contacts.models import AttributeDefinition

    headers = [h for h in (headers or []) if h is not None]
    known = set(IMPORT_COLUMNS) | set(EXPORT_ONLY_COLUMNS) | {TAGS_COLUMN}
    if any(h.startswith(ATTRIBUTE_PREFIX) for h in headers):
        known |= {f"{ATTRIBUTE_PREFIX}{name}" for name in AttributeDefinition.objects.values_list("name", flat=True)}
    unknown = [h for h in headers if h not in known]
    if unknown:
        raise ImportFileError(
            f"Unknown column(s) {', '.join(repr(h) for h in unknown)}: the columns are "
            f"{', '.join(IMPORT_COLUMNS)}, {TAGS_COLUMN} and attr.<name> of a declared attribute "
            f"(and, ignored on import, {', '.join(EXPORT_ONLY_COLUMNS)})."
        )
    duplicated = sorted({h for h in headers if headers.count(h) > 1})
    if duplicated:
        raise ImportFileError(f"Column(s) {', '.join(duplicated)} appear more than once.")
    if not {"phone", "email", "contactId"} & set(headers):
        raise ImportFileError("The file needs a phone or an email column (or contactId to update contacts).")


def _cell(row, column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value).strip()


class ContactResource(resources.ModelResource):
    contactId = fields.Field(attribute="id", column_name="contactId", readonly=True)
    name = fields.Field(attribute="name", column_name="name")
    phone = fields.Field(attribute="phone", column_name="phone")
    email = fields.Field(attribute="email", column_name="email")
    optInWhatsApp = fields.Field(attribute="opt_in_whatsapp", column_name="optInWhatsApp", widget=StrictBooleanWidget())
    optInSms = fields.Field(attribute="opt_in_sms", column_name="optInSms", widget=StrictBooleanWidget())
    optInEmail = fields.Field(attribute="opt_in_email", column_name="optInEmail", widget=StrictBooleanWidget())
    optInVoice = fields.Field(attribute="opt_in_voice", column_name="optInVoice", widget=StrictBooleanWidget())
    optInRcs = fields.Field(attribute="opt_in_rcs", column_name="optInRcs", widget=StrictBooleanWidget())
    lastInboundMessageAt = fields.Field(
        attribute="last_inbound_message_at",
        column_name="lastInboundMessageAt",
        readonly=True,
        widget=IsoDateTimeWidget(),
    )
    createdAt = fields.Field(attribute="created_at", column_name="createdAt", readonly=True, widget=IsoDateTimeWidget())
    updatedAt = fields.Field(attribute="updated_at", column_name="updatedAt", readonly=True, widget=IsoDateTimeWidget())
    deletedAt = fields.Field(attribute="deleted_at", column_name="deletedAt", readonly=True, widget=IsoDateTimeWidget())

    class Meta:
        model = Contact
        fields = (*IMPORT_COLUMNS, *EXPORT_ONLY_COLUMNS)
        export_order = (*IMPORT_COLUMNS, *EXPORT_ONLY_COLUMNS)
        import_id_fields = ("contactId",)
        use_transactions = True
        clean_model_instances = False
        skip_unchanged = False
        report_skipped = True

    def __init__(
        self,
        *,
        progress: Callable[[], None] | None = None,
        malformed_rows: dict[int, str] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.progress = progress
        # Row number → why the reader could not read it (see read_csv); reported as invalid rows.
        self.malformed_rows = malformed_rows or {}
        self._seen: dict[tuple[str, str], int] = {}

    # --- Import ---------------------------------------------------------------------------------
    def _check_import_id_fields(self, headers):
        check_headers(headers)  # contactId is optional: rows without it create contacts

    def get_or_init_instance(self, instance_loader, row):
        raw = _cell(row, "contactId")
        if not raw:
            return Contact(), True
        try:
            contact_id = uuid.UUID(raw)
        except ValueError:
            raise ValidationError({"contactId": [f"{raw!r} is not a contactId (a UUID)."]}) from None
        contact = Contact.objects.active().filter(pk=contact_id).first()
        if contact is None:
            raise ValidationError(
                {"contactId": [f"No contact with contactId {raw} (or it is deleted): leave contactId empty to create."]}
            )
        return contact, False

    def import_instance(self, instance, row, **kwargs):
        """Read the row into ``instance._import_data``; the services apply it in save_instance."""
        data: dict[str, object] = {}
        errors: dict[str, list[str]] = {}
        for column in ("name", "phone", "email"):
            if column in row and _cell(row, column):
                data[column] = _cell(row, column)
        if "phone" in data:
            try:
                data["phone"] = normalize_phone(data["phone"])
            except ValidationError as exc:
                errors["phone"] = exc.messages
        for column, field in OPT_IN_COLUMNS.items():
            if column not in row:
                continue
            try:
                value = self.fields[column].widget.clean(row[column])
            except ValueError as exc:
                errors[column] = [str(exc)]
                continue
            if value is not None:
                data[field] = value
        if errors:
            raise ValidationError(errors)
        instance._import_data = data

    def save_instance(self, instance, is_create, row, **kwargs):
        if not self._is_using_transactions(kwargs) and self._is_dry_run(kwargs):
            return  # a dry run that cannot be rolled back must not write
        data = instance._import_data
        actor = kwargs.get("user")
        row_number = kwargs.get("row_number")
        try:
            if is_create:
                opt_ins = {f.removeprefix("opt_in_"): data[f] for f in OPT_IN_COLUMNS.values() if f in data}
                created = contact_create(
                    name=data.get("name", ""),
                    phone=data.get("phone"),
                    email=data.get("email"),
                    opt_ins=opt_ins,
                    actor=actor,
                    source=ConsentSource.IMPORT,
                )
                for field in Contact._meta.concrete_fields:
                    setattr(instance, field.attname, getattr(created, field.attname))
                instance._state.adding = False
            else:
                contact_update(contact=instance, data=data, actor=actor, source=ConsentSource.IMPORT)
        except ValidationError as exc:
            raise self._row_error(exc, data) from None
        for key in ("phone", "email"):
            if getattr(instance, key):
                self._seen.setdefault((key, getattr(instance, key)), row_number)

    def _row_error(self, exc: ValidationError, data: dict) -> ValidationError:
        """The services' error keyed by CSV column, naming the earlier row of this file on a duplicate."""
        errors: dict[str, list[str]] = {}
        for field, messages in exc.message_dict.items():
            column = COLUMN_FOR_FIELD.get(field, NON_FIELD_ERRORS)
            if field in ("phone", "email") and data.get(field):
                value = data[field] if field == "phone" else str(data[field]).lower()
                earlier = self._seen.get((field, value))
                if earlier is not None:
                    messages = [f"Duplicate: row {earlier} of this file already has this {field}."]
            errors.setdefault(column, []).extend(messages)
        return ValidationError(errors)

    def import_row(self, row, instance_loader, **kwargs):
        reason = self.malformed_rows.get(kwargs.get("row_number"))
        if reason is not None:
            result = self.get_row_result_class()()
            result.import_type = RowResult.IMPORT_TYPE_INVALID
            result.validation_error = ValidationError(reason)
        else:
            result = super().import_row(row, instance_loader, **kwargs)
        if self.progress is not None:
            self.progress()
        return result

    # --- Export ---------------------------------------------------------------------------------
    def get_queryset(self):
        return Contact.objects.all().order_by("created_at", "id")
