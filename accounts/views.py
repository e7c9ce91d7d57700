"""Sign-in and sign-out pages."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import views as auth_views
from django.http import HttpResponseRedirect
from django.shortcuts import resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

from accounts.backends import password_sign_in_open
from accounts.services import audit_record, client_ip
from accounts.signals import OIDC_BACKEND
from wecare import oidc


class SignInView(auth_views.LoginView):
    """The way in: Cognito where it is configured; the password form for local/test and break-glass."""

    template_name = "registration/login.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["oidc_enabled"] = oidc.oidc_enabled()
        context["password_open"] = password_sign_in_open()
        return context


def admin_login_redirect(request):
    """The admin's own password form is not a way around Cognito: send it to the sign-in page."""
    next_url = request.GET.get("next", "")
    target = resolve_url(settings.LOGIN_URL)
    if next_url and url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        target = f"{target}?{urlencode({'next': next_url})}"
    return HttpResponseRedirect(target)


class SignOutView(View):
    """Ends the local session and, for a Cognito sign-in, the provider's session too (POST only)."""

    http_method_names = ["post", "options"]

    def post(self, request):
        target = resolve_url(settings.LOGOUT_REDIRECT_URL)
        user = request.user
        if user.is_authenticated:
            via_oidc = request.session.get(auth.BACKEND_SESSION_KEY) == OIDC_BACKEND
            if via_oidc and oidc.oidc_enabled():
                target = oidc.logout_url(request)
            audit_record(
                user=user,
                action="logout",
                resource_type="user",
                resource_id=user.pk,
                details={"ip": client_ip(request), "method": "oidc" if via_oidc else "password"},
            )
            auth.logout(request)
        return HttpResponseRedirect(target)
