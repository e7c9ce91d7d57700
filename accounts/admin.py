from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied

from accounts.models import AuditLog, User
from accounts.roles import ADMIN
from accounts.services import role_from_groups, user_set_break_glass


class UserChangeForm(DjangoUserAdmin.form):
    def clean(self):
        cleaned = super().clean()
        if cleaned.get("break_glass_enabled") and not cleaned.get("is_superuser"):
            self.add_error("break_glass_enabled", "Break-glass password sign-in is for superusers only.")
        return cleaned


class CognitoUserCreationForm(forms.ModelForm):
    """What an Admin who is not a superuser fills in to add someone: no password (they use Cognito)."""

    class Meta:
        model = User
        fields = ("email",)

    def save(self, commit=True):
        user = super().save(commit=False)
        user.email = user.username = User.objects.normalize_email(user.email).lower()
        user.set_unusable_password()
        if commit:
            user.save()
        return user


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Users and their roles. Only Admins hold the user permissions, so only they see this page.

    Roles of people who sign in with Cognito follow their Cognito groups at every sign-in.
    """

    form = UserChangeForm
    list_display = ("email", "role", "created_at", "last_login_at", "is_active", "break_glass_enabled")
    list_filter = ("groups", "is_active", "is_staff", "is_superuser", "break_glass_enabled")
    search_fields = ("email", "username", "first_name", "last_name")
    ordering = ("email",)
    readonly_fields = ("oidc_subject", "last_login", "date_joined")
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Sign-in", {"fields": ("oidc_subject", "break_glass_enabled")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    # --- Privilege fields: superusers only --------------------------------------------------------
    # An Admin who is not a superuser manages people and their roles, but cannot make anyone (them-
    # selves included) a superuser, grant permissions outside the roles, set a password or turn on
    # break-glass, nor change a superuser's account at all.
    SUPERUSER_ONLY_FIELDS = ("is_superuser", "user_permissions", "break_glass_enabled", "password")

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser and obj is not None:
            fields += [f for f in self.SUPERUSER_ONLY_FIELDS if f not in fields]
        return fields

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        if obj is None and not request.user.is_superuser:
            return ((None, {"fields": ("email",)}),)
        return super().get_fieldsets(request, obj)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None and not request.user.is_superuser:
            kwargs["form"] = CognitoUserCreationForm
            kwargs["fields"] = ("email",)
            return admin.ModelAdmin.get_form(self, request, obj, **kwargs)
        return super().get_form(request, obj, **kwargs)

    def user_change_password(self, request, id, form_url=""):
        if not request.user.is_superuser:
            request.audit_denial_reason = "only a superuser may set a password"
            raise PermissionDenied("Only a superuser may set a password.")
        return super().user_change_password(request, id, form_url)

    @admin.display(description="role")
    def role(self, obj: User) -> str:
        if obj.is_superuser:
            return ADMIN
        return role_from_groups([g.name for g in obj.groups.all()]) or "—"

    @admin.display(description="created at", ordering="date_joined")
    def created_at(self, obj: User):
        return obj.date_joined

    @admin.display(description="last login at", ordering="last_login")
    def last_login_at(self, obj: User):
        return obj.last_login

    def save_model(self, request, obj, form, change):
        # The break-glass switch goes through its service, which audits who turned it on or off.
        wanted = obj.break_glass_enabled
        if change and "break_glass_enabled" in form.changed_data:
            obj.break_glass_enabled = not wanted
        super().save_model(request, obj, form, change)
        if change and "break_glass_enabled" in form.changed_data:
            user_set_break_glass(user=obj, enabled=wanted, by=request.user)


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
