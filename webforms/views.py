"""Staff pages of Forms: list, build and edit (Operator+), submissions and their CSV export.

Thin: FormBuilderForm reads the request, webforms.services change, webforms.selectors read. Viewers
see forms and submissions; managing them is Operator+ (403, audited, otherwise).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.views.decorators.http import require_http_methods

from accounts.services import audit_record
from webforms.models import Form
from webforms.page_forms import FormBuilderForm
from webforms.selectors import form_list, form_submissions, submissions_csv
from webforms.services import form_create, form_update
from wecare.pages import page_view, render_page

PAGE_SIZE = 50


def _form_errors(builder: FormBuilderForm, exc: ValidationError) -> None:
    for field, field_messages in exc.message_dict.items():
        if field in builder.fields:
            builder.add_error(field, field_messages)
        else:
            builder.add_error(None, [m if field == NON_FIELD_ERRORS else f"{field}: {m}" for m in field_messages])


@page_view("webforms.view_form")
def form_list_page(request: HttpRequest) -> HttpResponse:
    return render_page(request, "webforms/list.html", {"forms": form_list()})


@page_view("webforms.add_form")
@require_http_methods(["GET", "POST"])
def form_create_page(request: HttpRequest) -> HttpResponse:
    builder = FormBuilderForm(request.POST or None)
    if request.method == "POST" and builder.is_valid():
        try:
            form = form_create(content=builder.content(), **builder.form_settings(), actor=request.user)
        except ValidationError as exc:
            _form_errors(builder, exc)
        else:
            messages.success(request, f"Form {form} created: it is live at /f/{form.slug}/.")
            return redirect("webforms_pages:detail", form_id=form.pk)
    return render_page(request, "webforms/builder.html", {"builder": builder, "creating": True})


def _builder_initial(form: Form) -> dict:
    version = form.current_version
    initial = {
        "name": form.name,
        "slug": form.slug,
        "email_double_opt_in": form.email_double_opt_in,
        "is_published": form.is_published,
        "embed_origins": form.embed_origins,
    }
    if version is not None:
        initial.update(
            title=version.title,
            intro=version.intro,
            ask_name=version.ask_name,
            ask_phone=version.ask_phone,
            ask_email=version.ask_email,
            attributes=version.attributes,
            consent_whatsapp=version.consent_whatsapp,
            consent_sms=version.consent_sms,
            consent_email=version.consent_email,
            consent_voice=version.consent_voice,
            consent_rcs=version.consent_rcs,
        )
    return initial


@page_view("webforms.change_form")
@require_http_methods(["GET", "POST"])
def form_edit_page(request: HttpRequest, form_id) -> HttpResponse:
    form = get_object_or_404(Form.objects.select_related("current_version"), pk=form_id)
    builder = FormBuilderForm(request.POST or None, initial=_builder_initial(form))
    if request.method == "POST" and builder.is_valid():
        before = form.current_version_id
        try:
            form = form_update(form=form, changes={**builder.content(), **builder.form_settings()}, actor=request.user)
        except ValidationError as exc:
            _form_errors(builder, exc)
        else:
            if form.current_version_id != before:
                messages.success(
                    request, f"Saved as version {form.current_version.number}; earlier submissions keep theirs."
                )
            else:
                messages.success(request, "Saved.")
            return redirect("webforms_pages:detail", form_id=form.pk)
    return render_page(request, "webforms/builder.html", {"builder": builder, "form_obj": form, "creating": False})


@page_view("webforms.view_form")
def form_detail_page(request: HttpRequest, form_id) -> HttpResponse:
    form = get_object_or_404(Form.objects.select_related("current_version"), pk=form_id)
    public_url = request.build_absolute_uri(reverse("webforms_public:form", args=[form.slug]))
    title = form.current_version.title if form.current_version else form.name
    # The snippet is HTML for another site: the title is escaped for its attribute.
    snippet = (
        f'<iframe src="{escape(public_url)}" title="{escape(title)}" '
        'width="100%" height="720" loading="lazy" style="border:0"></iframe>'
    )
    return render_page(
        request,
        "webforms/detail.html",
        {
            "form_obj": form,
            "versions": form.versions.order_by("-number"),
            "public_url": public_url,
            "snippet": snippet,
            "recent": form_submissions(form=form)[:10],
        },
    )


@page_view("webforms.view_formsubmission")
def form_submissions_page(request: HttpRequest, form_id) -> HttpResponse:
    form = get_object_or_404(Form, pk=form_id)
    page = Paginator(form_submissions(form=form), PAGE_SIZE).get_page(request.GET.get("page"))
    return render_page(request, "webforms/submissions.html", {"form_obj": form, "page": page})


@page_view("webforms.view_formsubmission", "webforms.export_formsubmission")
def form_submissions_csv(request: HttpRequest, form_id) -> StreamingHttpResponse:
    form = get_object_or_404(Form, pk=form_id)
    audit_record(user=request.user, action="form.export", resource_type="form", resource_id=form.pk)
    response = StreamingHttpResponse(submissions_csv(form=form), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="form-{form.slug}-submissions-{stamp}.csv"'
    return response
