"""Contact pages: list, detail with consent history, create, edit, delete, restore, CSV import.

Thin: forms read the request, contacts.selectors read, contacts.services change (source "ui";
"import" for the CSV import, as the admin and the command record it).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.services import audit_record
from contacts.exporting import contacts_export_csv
from contacts.filters import ContactFilter
from contacts.import_jobs import REPORT_ROWS_SHOWN, contact_import_job_create
from contacts.importing import ImportFileError
from contacts.models import ConsentSource, Contact, ContactImportJob
from contacts.page_forms import OPT_IN_FIELDS, ContactEditForm, ContactForm, ImportForm
from contacts.selectors import contact_consent_history
from contacts.services import contact_create, contact_restore, contact_soft_delete, contact_update
from links.selectors import contact_clicks
from wecare.pages import deny, page_view, render_page, whatsapp_window

PAGE_SIZE = 50


def _form_errors(form, exc: ValidationError) -> None:
    """Put the services' errors on the form, each on its field when the form has one."""
    for field, field_messages in exc.message_dict.items():
        if field in form.fields:
            form.add_error(field, field_messages)
        else:
            form.add_error(None, [m if field == NON_FIELD_ERRORS else f"{field}: {m}" for m in field_messages])


def _dm_url(contact) -> str | None:
    try:
        return reverse("dm:conversation", args=[contact.pk])
    except NoReverseMatch:  # the DM pages are not part of this build
        return None


@page_view("contacts.view_contact")
def contact_list(request: HttpRequest) -> HttpResponse:
    show_deleted = request.GET.get("deleted") == "1" and request.user.has_perm("contacts.restore_contact")
    base = Contact.objects.filter(deleted_at__isnull=False) if show_deleted else Contact.objects.active()
    filters = ContactFilter(data=request.GET, queryset=base.order_by("-created_at", "id"))
    contacts = filters.qs if filters.is_valid() else base.none()
    page = Paginator(contacts, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render_page(
        request,
        "contacts/list.html",
        {
            "page": page,
            "filters": filters,
            "search": request.GET.get("search", ""),
            "opt_in_filters": [
                ("optInWhatsApp", "WhatsApp", request.GET.get("optInWhatsApp", "")),
                ("optInSms", "SMS", request.GET.get("optInSms", "")),
                ("optInEmail", "Email", request.GET.get("optInEmail", "")),
            ],
            "show_deleted": show_deleted,
            "query": query.urlencode(),
        },
    )


@page_view("contacts.view_contact", "contacts.view_consentevent")
def contact_detail(request: HttpRequest, contact_id) -> HttpResponse:
    contact = get_object_or_404(Contact, pk=contact_id)
    if contact.is_deleted and not request.user.has_perm("contacts.restore_contact"):
        return render_page(request, "404.html", status=404)
    return render_page(
        request,
        "contacts/detail.html",
        {
            "contact": contact,
            "history": contact_consent_history(contact=contact)[:200],
            "window": whatsapp_window(contact),
            "dm_url": _dm_url(contact),
            "link_clicks": contact_clicks(contact),
        },
    )


@page_view("contacts.add_contact")
@require_http_methods(["GET", "POST"])
def contact_create_page(request: HttpRequest) -> HttpResponse:
    form = ContactForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            contact = contact_create(
                name=data["name"],
                phone=data["phone"] or None,
                email=data["email"] or None,
                # Only the boxes the operator ticked: an unticked box is "not given", and stays false.
                opt_ins={field.removeprefix("opt_in_"): True for field in OPT_IN_FIELDS if data[field]},
                actor=request.user,
                source=ConsentSource.UI,
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Contact {contact} created.")
            return redirect("contact_pages:detail", contact_id=contact.pk)
    return render_page(request, "contacts/form.html", {"form": form, "creating": True})


@page_view("contacts.change_contact")
@require_http_methods(["GET", "POST"])
def contact_edit_page(request: HttpRequest, contact_id) -> HttpResponse:
    contact = get_object_or_404(Contact.objects.active(), pk=contact_id)
    form = ContactEditForm(request.POST or None, initial=ContactEditForm.initial_for(contact))
    if request.method == "POST" and form.is_valid():
        data = form.changes()
        try:
            if data:
                contact_update(contact=contact, data=data, actor=request.user, source=ConsentSource.UI)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "Saved." if data else "Nothing changed.")
            return redirect("contact_pages:detail", contact_id=contact.pk)
    return render_page(request, "contacts/form.html", {"form": form, "contact": contact, "creating": False})


@page_view("contacts.delete_contact")
@require_http_methods(["GET", "POST"])
def contact_delete_page(request: HttpRequest, contact_id) -> HttpResponse:
    contact = get_object_or_404(Contact.objects.active(), pk=contact_id)
    if request.method == "POST":
        try:
            contact_soft_delete(contact=contact, actor=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("contact_pages:list")
        messages.success(request, f"Contact {contact} deleted. Their consent history is kept.")
        return redirect("contact_pages:list")
    return render_page(request, "contacts/delete.html", {"contact": contact})


@page_view("contacts.restore_contact")
@require_POST
def contact_restore_page(request: HttpRequest, contact_id) -> HttpResponse:
    contact = get_object_or_404(Contact, pk=contact_id)
    try:
        contact_restore(contact=contact, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Contact {contact} restored.")
    return redirect("contact_pages:detail", contact_id=contact.pk)


@page_view("contacts.add_contact", "contacts.change_contact")
@require_http_methods(["GET", "POST"])
def contact_import_page(request: HttpRequest) -> HttpResponse:
    """Upload: the file is checked and stored, a worker imports it; the job page shows progress."""
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = contact_import_job_create(
                upload=form.cleaned_data["file"], actor=request.user, dry_run=form.cleaned_data["dry_run"]
            )
        except ImportFileError as exc:
            form.add_error("file", f"{exc} Nothing was imported.")
        else:
            return redirect("contact_pages:import_job", job_id=job.pk)
    jobs = ContactImportJob.objects.filter(created_by=request.user)[:10]
    return render_page(request, "contacts/import.html", {"form": form, "jobs": jobs})


@page_view("contacts.add_contact", "contacts.change_contact")
def contact_import_job_page(request: HttpRequest, job_id) -> HttpResponse:
    """The job's progress (polled by htmx until it is finished), then its report."""
    job = get_object_or_404(ContactImportJob, pk=job_id)
    if job.created_by_id != request.user.pk and not request.user.has_perm("contacts.restore_contact"):
        deny(request, "another user's import job")
    return render_page(
        request,
        "contacts/import_job.html",
        {"job": job, "bad_rows": job.bad_rows[:REPORT_ROWS_SHOWN], "shown": REPORT_ROWS_SHOWN},
    )


@page_view("contacts.export_contact")
def contact_export_page(request: HttpRequest) -> StreamingHttpResponse:
    """Every active contact as CSV, streamed in constant memory, formula-safe. Its own permission
    (Operator and Admin), audited with the row count, as the admin's export is."""
    contacts = Contact.objects.active()
    audit_record(
        user=request.user,
        action="contacts.export",
        resource_type="contact",
        details={"scope": "active", "rows": contacts.count()},
    )
    response = StreamingHttpResponse(contacts_export_csv(contacts, bom=True), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="contacts-{timezone.now():%Y%m%d-%H%M%S}.csv"'
    return response
