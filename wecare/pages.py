"""What every operator page shares: the layout choice for htmx navigation, and role checks.

Pages are server-rendered. A sidebar click is an htmx "boosted" request that targets ``#main``;
for those the page renders inside a small layout (title, sidebar, main) instead of the whole
document, so the browser swaps the content without a full reload. A direct load, a reload, or a
history restore gets the whole document: every URL works as a deep link.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django_htmx.http import HttpResponseClientRedirect

from messaging.safety import WINDOW, within_window

FULL_LAYOUT = "base.html"
PARTIAL_LAYOUT = "partial.html"
MAIN_TARGET = "main"


def layout_for(request: HttpRequest) -> str:
    """The partial layout for an htmx swap of ``#main``; the whole document otherwise."""
    htmx = getattr(request, "htmx", None)
    if htmx and htmx.target == MAIN_TARGET and not htmx.history_restore_request:
        return PARTIAL_LAYOUT
    return FULL_LAYOUT


def render_page(request: HttpRequest, template: str, context: dict | None = None, *, status: int = 200) -> HttpResponse:
    response = render(request, template, {"base_template": layout_for(request), **(context or {})}, status=status)
    # The same URL answers with a partial or a whole page: caches must keep them apart.
    patch_vary_headers(response, ("HX-Request", "HX-Target", "HX-History-Restore-Request"))
    return response


def render_fragment(request: HttpRequest, template: str, context: dict | None = None, *, status: int = 200):
    """A piece of a page (a polled list, a counter): never a whole document."""
    response = render(request, template, context or {}, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def deny(request: HttpRequest, reason: str) -> None:
    """Refuse with 403; the audit middleware records ``reason``."""
    request.audit_denial_reason = reason
    raise PermissionDenied(reason)


def has_role(user) -> bool:
    return bool(user.is_authenticated and user.is_active and user.role)


def page_view(*perms: str) -> Callable:
    """A page for signed-in users holding a role and every one of ``perms``; 403 (audited) otherwise.

    An htmx request from an expired session is sent to the sign-in page as a full navigation,
    so the login form never lands inside the workspace's main area.
    """

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            user = request.user
            if not user.is_authenticated:
                htmx = getattr(request, "htmx", None)
                if htmx:
                    # Back to the page the user was on, not to the fragment that was polled.
                    return HttpResponseClientRedirect(
                        redirect_to_login(htmx.current_url_abs_path or request.get_full_path()).url
                    )
                return redirect_to_login(request.get_full_path())
            if not has_role(user):
                deny(request, "no role: the user is in none of the Viewer, Operator and Admin groups")
            missing = [perm for perm in perms if not user.has_perm(perm)]
            if missing:
                deny(request, f"{user.role} lacks {', '.join(missing)}")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def whatsapp_window(contact, now=None) -> dict:
    """The contact's WhatsApp service window as the pages show it, by the safety gate's own rule:
    ``{"open": bool, "expires_at": datetime | None}`` (expires_at also when it closed already)."""
    now = now or timezone.now()
    last = contact.last_inbound_message_at
    return {"open": within_window(contact, now), "expires_at": last + WINDOW if last else None}
