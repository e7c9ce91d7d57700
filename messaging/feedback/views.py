"""The public unsubscribe page: no login, the signed link is the authority.

- GET  /unsubscribe/<token>/          the page, asking for one confirmation (a GET never unsubscribes:
                                      link scanners and previews open links);
- POST /unsubscribe/<token>/confirm   the confirmation (CSRF-protected, as any form);
- POST /unsubscribe/<token>/          RFC 8058 One-Click from a mail client: body
                                      ``List-Unsubscribe=One-Click``, no cookie, no CSRF token. This is the
                                      only CSRF-exempt handling, and it refuses any other body.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from messaging.feedback.unsubscribe import (
    ONE_CLICK_BODY,
    InvalidToken,
    unsubscribe_apply,
    unsubscribe_target,
)

TEMPLATE = "messaging/feedback/unsubscribe.html"
MAX_TOKEN_CHARS = 512


def _page(request: HttpRequest, token: str, status: int = 200, **context) -> HttpResponse:
    response = render(request, TEMPLATE, {"token": token, **context}, status=status)
    # The token must not leave in a Referer header; "no-referrer" would also make the browser send
    # "Origin: null" with the confirmation, which CSRF protection (rightly) refuses.
    response["Referrer-Policy"] = "same-origin"
    response["Cache-Control"] = "no-store"
    return response


def _is_one_click(request: HttpRequest) -> bool:
    # RFC 8058 §3.1: the key/value pair arrives as application/x-www-form-urlencoded or multipart/form-data.
    return request.POST.get("List-Unsubscribe") == ONE_CLICK_BODY.split("=", 1)[1]


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    if len(token) > MAX_TOKEN_CHARS:
        return _page(request, "", status=400, error="This unsubscribe link is not valid.")
    if request.method == "POST":
        if not _is_one_click(request):
            return HttpResponseBadRequest("Expected List-Unsubscribe=One-Click.", content_type="text/plain")
        try:
            unsubscribe_apply(token, one_click=True)
        except InvalidToken as exc:
            return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
        return HttpResponse("Unsubscribed.", content_type="text/plain; charset=utf-8")
    try:
        target = unsubscribe_target(token)
    except InvalidToken as exc:
        return _page(request, "", status=400, error=str(exc))
    return _page(request, token, masked_email=target.masked_email)


@csrf_protect
@require_POST
def unsubscribe_confirm(request: HttpRequest, token: str) -> HttpResponse:
    if len(token) > MAX_TOKEN_CHARS:
        return _page(request, "", status=400, error="This unsubscribe link is not valid.")
    try:
        target = unsubscribe_apply(token, one_click=False)
    except InvalidToken as exc:
        return _page(request, "", status=400, error=str(exc))
    return _page(request, "", done=True, masked_email=target.masked_email)
