from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import AuditLog, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("email", "role", "is_active", "is_staff", "is_superuser", "date_joined", "last_login")
    list_filter = ("groups", "is_active", "is_staff", "is_superuser")
    search_fields = ("email", "username", "first_name", "last_name")
    ordering = ("email",)

    @admin.display(description="role")
    def role(self, obj: User) -> str:
        return obj.role or "—"


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """Read-only for everyone, superusers included: the trail is evidence."""

    list_display = ("timestamp", "actor", "action", "resource_type", "resource_id")
    list_filter = ("action", "resource_type")
    search_fields = ("actor", "action", "resource_type", "resource_id")
    date_hierarchy = "timestamp"
    show_full_result_count = False
    readonly_fields = [f.name for f in AuditLog._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
