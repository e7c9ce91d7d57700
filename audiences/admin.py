"""Segments in the admin: listed with their conditions; changes go through audiences.services."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from audiences.models import Segment
from audiences.services import segment_create, segment_delete, segment_update
from audiences.spec import spec_clean, spec_summary


class SegmentForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ["name", "description", "spec"]

    def clean_spec(self):
        try:
            return spec_clean(self.cleaned_data.get("spec") or {})
        except ValidationError as exc:
            raise ValidationError([m for ms in exc.message_dict.values() for m in ms]) from None


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentForm
    list_display = ("name", "conditions", "created_by", "updated_at")
    list_select_related = ("created_by",)
    search_fields = ("name",)
    readonly_fields = ("created_by", "created_at", "updated_at")

    @admin.display(description="conditions")
    def conditions(self, obj: Segment) -> str:
        return "; ".join(spec_summary(obj.spec))

    def save_model(self, request, obj, form, change):
        data = {k: form.cleaned_data[k] for k in ("name", "description", "spec")}
        if change:
            segment_update(segment=Segment.objects.get(pk=obj.pk), actor=request.user, **data)
        else:
            created = segment_create(actor=request.user, **data)
            obj.pk = created.pk
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        segment_delete(segment=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for segment in queryset:
            segment_delete(segment=segment, actor=request.user)
