"""Admin for forms, their versions and submissions. Writes go through webforms.services; versions,
submissions and confirmations are evidence, so read-only."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from webforms.models import Ask, EmailConfirmation, Form, FormSubmission, FormVersion
from webforms.services import (
    CONTENT_FIELDS,
    RESERVED_SLUGS,
    embed_origins_clean,
    form_content_clean,
    form_create,
    form_update,
)

SETTINGS_FIELDS = ("name", "slug", "is_published", "email_double_opt_in", "embed_origins")


class FormAdminForm(forms.ModelForm):
    """The form's settings plus the content of its (next) version."""

    title = forms.CharField(max_length=200)
    intro = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    ask_name = forms.ChoiceField(choices=Ask.choices, initial=Ask.OPTIONAL)
    ask_phone = forms.ChoiceField(choices=Ask.choices, initial=Ask.OPTIONAL)
    ask_email = forms.ChoiceField(choices=Ask.choices, initial=Ask.OPTIONAL)
    attributes = forms.CharField(required=False, help_text="Declared contact attribute names, comma-separated.")
    consent_whatsapp = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    consent_sms = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    consent_email = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    consent_voice = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    consent_rcs = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    class Meta:
        model = Form
        fields = list(SETTINGS_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        version = self.instance.current_version if self.instance.pk else None
        self.initial_version_id = version.pk if version else None
        if version is not None:
            for field in CONTENT_FIELDS:
                value = getattr(version, field)
                self.initial[field] = ", ".join(value) if field == "attributes" else value

    def content(self) -> dict:
        data = {field: self.cleaned_data[field] for field in CONTENT_FIELDS}
        data["attributes"] = [name.strip() for name in data["attributes"].split(",") if name.strip()]
        return data

    def clean(self):
        """The services' own checks, so that a problem shows on its field (save_model then succeeds)."""
        data = super().clean()
        if self.errors:
            return data
        try:
            form_content_clean(self.content())
        except ValidationError as exc:
            self._add_errors(exc)
        try:
            data["embed_origins"] = embed_origins_clean(data.get("embed_origins", ""))
        except ValidationError as exc:
            self._add_errors(exc)
        slug = data.get("slug")
        if slug in RESERVED_SLUGS or Form.objects.filter(slug=slug).exclude(pk=self.instance.pk).exists():
            self.add_error("slug", "Another form already has this address.")
        return data

    def _add_errors(self, exc: ValidationError) -> None:
        for field, problems in exc.message_dict.items():
            self.add_error(field if field in self.fields else None, problems)

    def _post_clean(self):
        pass  # the model is written by the services (save_model), not by this form


class FormVersionInline(admin.TabularInline):
    model = FormVersion
    extra = 0
    fields = (
        "number",
        "title",
        "consent_whatsapp",
        "consent_sms",
        "consent_email",
        "consent_voice",
        "consent_rcs",
        "created_at",
        "created_by",
    )
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Form)
class FormAdmin(admin.ModelAdmin):
    form = FormAdminForm
    list_display = ("name", "slug", "is_published", "email_double_opt_in", "version_number", "created_at")
    list_filter = ("is_published", "email_double_opt_in")
    search_fields = ("name", "slug")
    list_select_related = ("current_version",)
    inlines = [FormVersionInline]
    fieldsets = (
        (None, {"fields": SETTINGS_FIELDS}),
        ("Content (a change makes a new version)", {"fields": CONTENT_FIELDS}),
    )

    @admin.display(description="version")
    def version_number(self, obj: Form):
        return obj.current_version.number if obj.current_version else None

    def save_model(self, request, obj, form, change):
        settings = {field: form.cleaned_data[field] for field in SETTINGS_FIELDS}
        if change:
            saved = form_update(form=Form.objects.get(pk=obj.pk), changes={**settings, **form.content()},
                                actor=request.user)  # fmt: skip
        else:
            saved = form_create(content=form.content(), **settings, actor=request.user)
        obj.pk = saved.pk
        obj.current_version = saved.current_version
        if change and saved.current_version_id != form.initial_version_id:
            messages.info(request, f"Saved as version {saved.current_version.number}; earlier submissions keep theirs.")


@admin.register(FormVersion)
class FormVersionAdmin(admin.ModelAdmin):
    """Versions are the wording visitors were given: evidence, read-only."""

    list_display = ("form", "number", "title", "created_at")
    list_select_related = ("form",)
    readonly_fields = [f.name for f in FormVersion._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(FormSubmission)
class FormSubmissionAdmin(admin.ModelAdmin):
    """Submissions are the proof of consent: read-only for everyone."""

    list_display = ("created_at", "form", "version", "contact", "contact_created", "source_ip")
    list_filter = ("form",)
    list_select_related = ("form", "version", "contact")
    search_fields = ("contact__email", "contact__phone")
    raw_id_fields = ("contact",)
    readonly_fields = [f.name for f in FormSubmission._meta.fields]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EmailConfirmation)
class EmailConfirmationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "email", "emailed_at", "confirmed_at")
    list_select_related = ("contact",)
    search_fields = ("email",)
    raw_id_fields = ("contact", "submission")
    readonly_fields = [f.name for f in EmailConfirmation._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
