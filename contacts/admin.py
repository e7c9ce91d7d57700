"""Admin for contacts and their consent history. Every write goes through contacts.services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import transaction
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from import_export.admin import ImportExportActionModelAdmin
from import_export.formats import base_formats
from tablib import Dataset

from accounts.services import audit_record
from contacts.attributes import (
    contact_attributes_clean,
    contact_set_attributes,
    contact_set_tags,
    contacts_tag,
    tag_delete,
    tag_names_clean,
)
from contacts.import_jobs import REPORT_ROWS_SHOWN, contact_import_job_create
from contacts.importing import ImportFileError
from contacts.models import AttributeDefinition, ConsentEvent, ConsentSource, Contact, ContactImportJob, Tag
from contacts.page_forms import ImportForm
from contacts.pagination import ContactPaginator
from contacts.resources import ContactResource
from contacts.selectors import contact_filter_search
from contacts.services import (
    OPT_IN_FIELDS,
    contact_clean,
    contact_create,
    contact_export_includes_deleted,
    contact_restore,
    contact_soft_delete,
    contact_update,
)
from wecare.spreadsheet import safe_cell


class DeletedFilter(admin.SimpleListFilter):
    """Deleted yes/no; the list shows contacts that are not deleted unless asked otherwise."""

    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request, model_admin):
        return (("no", "No"), ("yes", "Yes"), ("all", "All"))

    def value(self):
        return super().value() or "no"

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(deleted_at__isnull=False)
        if self.value() == "all":
            return queryset
        return queryset.filter(deleted_at__isnull=True)


class ContactAdminForm(forms.ModelForm):
    """Validates like the services do (normalised phone, phone or email, uniqueness) so the form
    shows each problem on its field; the services then make the change."""

    tag_names = forms.CharField(
        label="Tags", required=False, help_text="Comma-separated tag names; new names become tags."
    )
    attribute_values = forms.JSONField(
        label="Attributes",
        required=False,
        help_text='Declared attributes as JSON, e.g. {"city": "Pune"}; checked against their types.',
    )

    class Meta:
        model = Contact
        fields = ["name", "phone", "email", "opt_in_whatsapp", "opt_in_sms", "opt_in_email"]
        help_texts = {"phone": "Any usual form; stored as E.164, e.g. +919876543210."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["tag_names"].initial = ", ".join(self.instance.tags.values_list("name", flat=True))
            self.fields["attribute_values"].initial = self.instance.attributes or {}

    def clean_tag_names(self):
        try:
            return tag_names_clean(self.cleaned_data.get("tag_names") or "")
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None

    def clean_attribute_values(self):
        values = self.cleaned_data.get("attribute_values") or {}
        try:
            contact_attributes_clean(values)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None
        return values

    def _post_clean(self):
        # The model's own validation would compare the raw phone against stored E.164 numbers;
        # contact_clean compares the normalised one.
        try:
            cleaned = contact_clean(
                name=self.cleaned_data.get("name", ""),
                phone=self.cleaned_data.get("phone"),
                email=self.cleaned_data.get("email"),
                exclude=self.instance if self.instance.pk else None,
            )
        except ValidationError as exc:
            for field, messages_ in exc.message_dict.items():
                self.add_error(None if field == NON_FIELD_ERRORS else field, messages_)
            return
        self.cleaned_data.update(cleaned)


class ConsentEventInline(admin.TabularInline):
    model = ConsentEvent
    extra = 0
    can_delete = False
    fields = ("changed_at", "channel", "old_value", "new_value", "actor", "source")
    readonly_fields = fields
    ordering = ("-changed_at",)
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TagActionForm(ActionForm):
    tags = forms.CharField(required=False, label="Tags", help_text="for the add/remove tags actions")


@admin.register(Contact)
class ContactAdmin(ImportExportActionModelAdmin):
    form = ContactAdminForm
    resource_classes = [ContactResource]
    import_formats = [base_formats.CSV]
    export_formats = [base_formats.CSV]
    list_display = (
        "display_name",
        "phone",
        "email",
        "opt_in_whatsapp",
        "opt_in_sms",
        "opt_in_email",
        "last_inbound_message_at",
        "created_at",
        "deleted_at",
    )
    list_filter = ("opt_in_whatsapp", "opt_in_sms", "opt_in_email", DeletedFilter)
    # The search box searches name, phone (any format) and email through search_text.
    search_fields = ("search_text",)
    search_help_text = "Name, phone (any format) or email; accents and case do not matter."
    readonly_fields = ("id", "last_inbound_message_at", "created_at", "updated_at", "deleted_at")
    fieldsets = (
        (None, {"fields": ("id", "name", "phone", "email")}),
        ("Consent", {"fields": ("opt_in_whatsapp", "opt_in_sms", "opt_in_email")}),
        ("Tags and attributes", {"fields": ("tag_names", "attribute_values")}),
        ("Activity", {"fields": ("last_inbound_message_at", "created_at", "updated_at", "deleted_at")}),
    )
    inlines = [ConsentEventInline]
    actions = ["soft_delete_selected", "restore_selected", "add_tags_selected", "remove_tags_selected"]
    action_form = TagActionForm
    date_hierarchy = None
    # At a million contacts an exact COUNT(*) per page load is the slow part: count up to 10,000,
    # then PostgreSQL's estimate (contacts.pagination), and never the unfiltered total.
    paginator = ContactPaginator
    show_full_result_count = False
    list_per_page = 50

    @admin.display(description="name", ordering="name")
    def display_name(self, obj: Contact) -> str:
        return obj.name or "—"

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []  # a new contact has no history yet

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return contact_filter_search(queryset, search_term), False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # it would delete for real
        return actions

    # --- Permissions ----------------------------------------------------------------------------
    def has_restore_permission(self, request) -> bool:
        return request.user.has_perm("contacts.restore_contact")

    def has_import_permission(self, request) -> bool:
        return request.user.has_perm("contacts.add_contact") and request.user.has_perm("contacts.change_contact")

    def has_export_permission(self, request) -> bool:
        # Its own permission: seeing contacts one page at a time is not taking them all away.
        return request.user.has_perm("contacts.export_contact")

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_deleted:
            return False  # restore it first
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_deleted:
            return False  # already deleted
        return super().has_delete_permission(request, obj)

    # --- Export: deleted contacts only when an Admin asks; audited with the row count ------------
    def get_export_data(self, file_format, request, queryset, **kwargs):
        if not self.has_export_permission(request):
            raise PermissionDenied
        include_deleted = contact_export_includes_deleted(
            user=request.user, asked=request.GET.get(DeletedFilter.parameter_name, "no") in ("yes", "all")
        )
        if not include_deleted:
            queryset = queryset.filter(deleted_at__isnull=True)
        rows = queryset.count()
        data = super().get_export_data(file_format, request, queryset, **kwargs)
        audit_record(
            user=request.user,
            action="contacts.export",
            resource_type="contact",
            details={
                "rows": rows,
                "format": file_format.get_title(),
                "include_deleted": include_deleted,
                "via": "admin",
            },
        )
        return data

    def get_data_for_export(self, request, queryset, **kwargs):
        # Names come from WhatsApp profiles: no free-text cell may run as a formula in a spreadsheet.
        # (Phones are validated E.164 and stay as they are, so an export imports back.)
        dataset = super().get_data_for_export(request, queryset, **kwargs)
        free_text = [i for i, header in enumerate(dataset.headers or []) if header in ("name", "email")]
        safe = Dataset(headers=dataset.headers)
        for row in dataset:
            cells = list(row)
            for i in free_text:
                cells[i] = safe_cell(cells[i])
            safe.append(cells)
        return safe

    # --- Writes through the services ------------------------------------------------------------
    def save_model(self, request, obj, form, change):
        opt_in_fields = [f for f in form.changed_data if f in OPT_IN_FIELDS]
        if not change:
            created = contact_create(
                name=form.cleaned_data.get("name", ""),
                phone=form.cleaned_data.get("phone"),
                email=form.cleaned_data.get("email"),
                opt_ins={OPT_IN_FIELDS[f]: form.cleaned_data[f] for f in opt_in_fields},
                actor=request.user,
                source=ConsentSource.ADMIN,
            )
            self._save_tags_and_attributes(request, created, form)
            for field in Contact._meta.concrete_fields:
                setattr(obj, field.attname, getattr(created, field.attname))
            obj._state.adding = False
            obj._state.db = created._state.db
            return
        extra = ("tag_names", "attribute_values")
        data = {f: form.cleaned_data[f] for f in form.changed_data if f in form.cleaned_data and f not in extra}
        current = Contact.objects.get(pk=obj.pk)
        contact_update(contact=current, data=data, actor=request.user, source=ConsentSource.ADMIN)
        self._save_tags_and_attributes(request, current, form)
        for field in Contact._meta.concrete_fields:
            setattr(obj, field.attname, getattr(current, field.attname))

    def _save_tags_and_attributes(self, request, contact: Contact, form) -> None:
        if "tag_names" in form.changed_data:
            contact_set_tags(
                contact=contact, names=form.cleaned_data["tag_names"], actor=request.user, source=ConsentSource.ADMIN
            )
        if "attribute_values" in form.changed_data:
            contact_set_attributes(
                contact=contact,
                values=form.cleaned_data["attribute_values"] or {},
                actor=request.user,
                source=ConsentSource.ADMIN,
                replace=True,
            )

    def get_deleted_objects(self, objs, request):
        # Deleting is soft: nothing else goes with the contact and its history stays.
        objs = list(objs)
        perms_needed = set() if self.has_delete_permission(request) else {"contact"}
        return [str(obj) for obj in objs], {"contacts": len(objs)}, perms_needed, []

    def delete_model(self, request, obj):
        contact_soft_delete(contact=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for contact in queryset.filter(deleted_at__isnull=True):
            contact_soft_delete(contact=contact, actor=request.user)

    # --- Actions --------------------------------------------------------------------------------
    @admin.action(description="Delete selected contacts (soft: an Admin can restore them)", permissions=["delete"])
    def soft_delete_selected(self, request, queryset):
        done = 0
        for contact in queryset.filter(deleted_at__isnull=True):
            contact_soft_delete(contact=contact, actor=request.user)
            done += 1
        self.message_user(request, f"Deleted {done} contact(s). An Admin can restore them.", messages.SUCCESS)

    @admin.action(description="Restore selected contacts", permissions=["restore"])
    def restore_selected(self, request, queryset):
        restored = 0
        for contact in queryset.filter(deleted_at__isnull=False):
            try:
                with transaction.atomic():
                    contact_restore(contact=contact, actor=request.user)
                restored += 1
            except ValidationError as exc:
                self.message_user(request, f"{contact}: {' '.join(exc.messages)}", messages.ERROR)
        self.message_user(request, f"Restored {restored} contact(s).", messages.SUCCESS)

    def _tag_action(self, request, queryset, *, add: bool) -> None:
        try:
            names = tag_names_clean(request.POST.get("tags", ""))
            if not names:
                raise ValidationError("Type the tag names in the Tags box next to the action.")
            result = contacts_tag(
                contact_ids=list(queryset.values_list("pk", flat=True)),
                add=names if add else (),
                remove=() if add else names,
                actor=request.user,
                source=ConsentSource.ADMIN,
            )
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return
        done = result["added"] if add else result["removed"]
        verb = "Added" if add else "Removed"
        self.message_user(request, f"{verb} {', '.join(names)}: {done} tag(s) on {result['contacts']} contact(s).")

    @admin.action(description="Add tags (typed in the Tags box) to selected contacts", permissions=["change"])
    def add_tags_selected(self, request, queryset):
        self._tag_action(request, queryset, add=True)

    @admin.action(description="Remove tags (typed in the Tags box) from selected contacts", permissions=["change"])
    def remove_tags_selected(self, request, queryset):
        self._tag_action(request, queryset, add=False)

    # --- Import: a background job (contacts.import_jobs), as on the operator pages ------------------
    def import_action(self, request, **kwargs):
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                job = contact_import_job_create(
                    upload=form.cleaned_data["file"], actor=request.user, dry_run=form.cleaned_data["dry_run"]
                )
            except ImportFileError as exc:
                form.add_error("file", f"{exc} Nothing was imported.")
            else:
                return redirect("admin:contacts_contactimportjob_change", job.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import contacts",
            "form": form,
        }
        return TemplateResponse(request, "admin/contacts/contact/import.html", context)


@admin.register(ContactImportJob)
class ContactImportJobAdmin(admin.ModelAdmin):
    """Import jobs: progress while the worker runs (the page refreshes itself), then the report."""

    list_display = ("file_name", "status", "created_by", "created_at", "rows_read", "created", "updated", "rejected")
    list_filter = ("status",)
    list_select_related = ("created_by",)
    exclude = ("bad_rows", "s3_key")
    readonly_fields = [f.name for f in ContactImportJob._meta.fields if f.name not in ("bad_rows", "s3_key")]
    change_form_template = "admin/contacts/contactimportjob/change_form.html"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("contacts.add_contact") and request.user.has_perm("contacts.change_contact")

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        if obj is not None:
            context.update(job=obj, bad_rows=obj.bad_rows[:REPORT_ROWS_SHOWN], shown=REPORT_ROWS_SHOWN)
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)


@admin.register(ConsentEvent)
class ConsentEventAdmin(admin.ModelAdmin):
    """The consent history: evidence, so read-only for everyone."""

    list_display = ("changed_at", "contact", "channel", "old_value", "new_value", "actor", "source")
    list_filter = ("channel", "source", "new_value")
    list_select_related = ("contact",)
    search_fields = ("actor", "contact__email", "contact__phone")
    raw_id_fields = ("contact", "changed_by")
    readonly_fields = [f.name for f in ConsentEvent._meta.fields]
    date_hierarchy = "changed_at"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)
    show_full_result_count = False

    def has_change_permission(self, request, obj=None):
        return False  # renaming would silently change every segment that names it

    def delete_model(self, request, obj):
        tag_delete(tag=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for tag in queryset:
            tag_delete(tag=tag, actor=request.user)


class AttributeDefinitionForm(forms.ModelForm):
    class Meta:
        model = AttributeDefinition
        fields = ["name", "label", "type", "choices"]


@admin.register(AttributeDefinition)
class AttributeDefinitionAdmin(admin.ModelAdmin):
    """Declared attributes. The name and type are fixed once declared: stored values depend on them."""

    form = AttributeDefinitionForm
    list_display = ("name", "label", "type", "created_at")
    list_filter = ("type",)

    def get_readonly_fields(self, request, obj=None):
        return ("name", "type") if obj is not None else ()

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_record(
            user=request.user,
            action="attribute.change" if change else "attribute.create",
            resource_type="attribute",
            resource_id=obj.name,
            details={"type": obj.type, "choices": obj.choices},
        )
