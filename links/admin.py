"""Admin for short links and their clicks. Creating and changing go through links.services (validated, audited)."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from links.models import UTM_FIELDS, Click, PersonalLink, ShortLink
from links.selectors import click_count
from links.services import link_create, link_update
from links.validation import destination_validate, slug_validate


class ShortLinkAdminForm(forms.ModelForm):
    destination = forms.CharField(max_length=2048, help_text="An http:// or https:// address.")

    class Meta:
        model = ShortLink
        fields = ["slug", "destination", "title", *UTM_FIELDS, "enabled", "expires_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "slug" in self.fields:
            self.fields["slug"].required = False
            self.fields["slug"].help_text = "Leave empty for a generated one."

    def clean_destination(self):
        return destination_validate(self.cleaned_data["destination"])

    def clean_slug(self):
        slug = self.cleaned_data.get("slug") or ""
        return slug_validate(slug) if slug else ""


@admin.register(ShortLink)
class ShortLinkAdmin(admin.ModelAdmin):
    form = ShortLinkAdminForm
    list_display = ("slug", "destination", "enabled", "expires_at", "click_count", "created_by", "created_at")
    list_filter = ("enabled",)
    search_fields = ("slug", "title", "destination")
    list_select_related = ("created_by",)
    readonly_fields = ("created_by", "created_at", "updated_at")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(click_count=click_count())

    @admin.display(description="Clicks", ordering="click_count")
    def click_count(self, link: ShortLink) -> int:
        return link.click_count

    def get_readonly_fields(self, request, obj=None):
        # A slug never changes: printed QR codes point at it.
        return (*self.readonly_fields, "slug") if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        utm = {name: data.get(name, "") for name in UTM_FIELDS}
        if change:
            link_update(
                link=obj,
                user=request.user,
                destination=data["destination"],
                title=data.get("title", ""),
                utm=utm,
                expires_at=data.get("expires_at"),
                enabled=data.get("enabled"),
            )
        else:
            obj.pk = link_create(
                user=request.user,
                destination=data["destination"],
                slug=data.get("slug", ""),
                title=data.get("title", ""),
                utm=utm,
                expires_at=data.get("expires_at"),
                enabled=data.get("enabled", True),
            ).pk


@admin.register(Click)
class ClickAdmin(admin.ModelAdmin):
    list_display = ("clicked_at", "link", "device", "referrer_host", "contact", "bulk_job")
    list_filter = ("device",)
    list_select_related = ("link",)
    raw_id_fields = ("link", "personal", "contact", "bulk_job")
    show_full_result_count = False
    date_hierarchy = "clicked_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PersonalLink)
class PersonalLinkAdmin(admin.ModelAdmin):
    list_display = ("token", "link", "contact", "bulk_job", "created_at")
    raw_id_fields = ("link", "contact", "message", "bulk_job")
    search_fields = ("token",)
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
