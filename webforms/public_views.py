"""The public side of forms: /f/<slug> (no sign-in, embeddable) and the double opt-in link.

Thin: PublicForm reads the request, webforms.services decide and store. The form page and its thanks
page are the only pages of the platform another site may frame, and only the sites configured for the
form (CSP frame-ancestors); every other page keeps X-Frame-Options DENY and frame-ancestors 'none'.
"""

from __future__ import annotations

import logging
import math

from django.core import signing
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.services import client_ip
from webforms.models import Form, FormSubmission
from webforms.page_forms import TOKEN, PublicForm
from webforms.services import (
    ConfirmationInvalid,
    Outcome,
    Visitor,
    confirmation_from_token,
    email_confirmation_confirm,
    form_submit,
    form_token,
    form_token_version,
    frame_ancestors,
    submission_rate_limit_wait,
)
from wecare import metrics

logger = logging.getLogger(__name__)

THANKS_SALT = "webforms.thanks"


def _visitor(request: HttpRequest) -> Visitor:
    return Visitor(ip=client_ip(request), user_agent=request.META.get("HTTP_USER_AGENT", "")[:512])


def _framed(response: HttpResponse, form: Form) -> HttpResponse:
    """Let the sites configured for this form (and only those) show this answer in a frame."""
    ancestors = frame_ancestors(form)
    response._csp_replace = {"frame-ancestors": ancestors}
    if ancestors != ["'none'"]:
        # X-Frame-Options cannot name several sites; browsers that know frame-ancestors obey it instead.
        response.xframe_options_exempt = True
    return response


def _origin_allowed(request: HttpRequest, form: Form) -> bool:
    """A POST that names its origin comes from our own page or a site allowed to embed the form."""
    origin = request.META.get("HTTP_ORIGIN")
    if not origin:
        return True
    own = f"{request.scheme}://{request.get_host()}"
    return origin == own or origin in frame_ancestors(form)


def _published(slug: str) -> Form:
    return get_object_or_404(
        Form.objects.select_related("current_version"), slug=slug, is_published=True, current_version__isnull=False
    )


def _render_form(request, form: Form, public_form: PublicForm, *, status: int = 200, notice: str = ""):
    # A fresh token each time the form is shown, the typed answers kept.
    if public_form.is_bound:
        public_form.data = public_form.data.copy()
        public_form.data[TOKEN] = form_token(public_form.version)
    else:
        public_form.initial[TOKEN] = form_token(public_form.version)
    context = {"form_obj": form, "version": public_form.version, "form": public_form, "notice": notice}
    return _framed(render(request, "webforms/public_form.html", context, status=status), form)


@csrf_exempt  # the signed form token does CSRF's job, also inside another site's frame (services.form_token)
@require_http_methods(["GET", "POST"])
def form_page(request: HttpRequest, slug: str) -> HttpResponse:
    form = _published(slug)
    if request.method == "GET":
        return _render_form(request, form, PublicForm(version=form.current_version))

    version = form_token_version(form, request.POST.get(TOKEN, ""))
    if version is None or not _origin_allowed(request, form):
        metrics.emit("FormSubmissions", outcome=Outcome.FORBIDDEN)
        public_form = PublicForm(request.POST, version=form.current_version)
        public_form.is_valid()
        public_form.add_error(
            None, "This page was open too long or did not come from our site. Please check your answers and send again."
        )
        return _render_form(request, form, public_form, status=403)

    public_form = PublicForm(request.POST, version=version)
    if public_form.is_robot():
        # Looks like success to the robot; nothing is stored.
        metrics.emit("FormSubmissions", outcome=Outcome.HONEYPOT)
        return _framed(render(request, "webforms/public_thanks.html", {"form_obj": form, "version": version}), form)
    if not public_form.is_valid():
        metrics.emit("FormSubmissions", outcome=Outcome.INVALID)
        return _render_form(request, form, public_form)  # 200 with the errors, as every page of ours
    visitor = _visitor(request)
    wait = submission_rate_limit_wait(visitor.ip)
    if wait > 0:
        metrics.emit("FormSubmissions", outcome=Outcome.RATE_LIMITED)
        minutes = max(1, math.ceil(wait / 60))
        public_form.add_error(
            None, f"Too many forms were sent from your connection. Please try again in {minutes} minute(s)."
        )
        response = _render_form(request, form, public_form, status=429)
        response["Retry-After"] = str(math.ceil(wait))
        return response

    data = public_form.cleaned_data
    try:
        submission = form_submit(
            form=form,
            version=version,
            name=data.get("name") or "",
            phone=data.get("phone"),
            email=data.get("email"),
            attributes=public_form.attributes(),
            ticked=public_form.ticked(),
            visitor=visitor,
            confirm_url=lambda token: request.build_absolute_uri(reverse("webforms_public:confirm", args=[token])),
        )
    except ValidationError as exc:
        metrics.emit("FormSubmissions", outcome=Outcome.INVALID)
        for field, messages in exc.message_dict.items():
            public_form.add_error(field if field in public_form.fields else None, messages)
        return _render_form(request, form, public_form)
    token = signing.dumps(str(submission.pk), salt=THANKS_SALT)
    return redirect("webforms_public:thanks", slug=form.slug, token=token)


def form_thanks(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    form = _published(slug)
    try:
        submission_id = signing.loads(token, salt=THANKS_SALT, max_age=3600)
    except signing.BadSignature:
        raise Http404("No such submission.") from None
    submission = FormSubmission.objects.filter(pk=submission_id, form=form).select_related("version").first()
    if submission is None:
        raise Http404("No such submission.")
    email = submission.consents.get("email", {})
    context = {
        "form_obj": form,
        "version": submission.version,
        "pending_email": email.get("outcome") == "pending_confirmation",
        "confirmation_sent": email.get("detail") == "confirmation email sent",
    }
    return _framed(render(request, "webforms/public_thanks.html", context), form)


@require_http_methods(["GET", "POST"])
def email_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The double opt-in link. GET shows a button; the POST confirms (mail scanners that open links
    must not confirm for the person)."""
    try:
        pending = confirmation_from_token(token)
    except ConfirmationInvalid as exc:
        return render(request, "webforms/public_confirm.html", {"problem": exc.reason}, status=400)
    context = {"pending": pending, "version": pending.submission.version}
    if request.method == "POST":
        try:
            email_confirmation_confirm(pending=pending, visitor=_visitor(request))
        except ConfirmationInvalid as exc:
            return render(request, "webforms/public_confirm.html", {"problem": exc.reason}, status=400)
        return render(request, "webforms/public_confirm.html", {**context, "confirmed": True})
    if pending.confirmed_at is not None:
        return render(request, "webforms/public_confirm.html", {**context, "confirmed": True})
    return render(request, "webforms/public_confirm.html", context)
