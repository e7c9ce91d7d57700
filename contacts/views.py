"""Contact pages: list, detail with consent history, create, edit, delete, restore, CSV import.

Thin: forms read the request, contacts.selectors read, contacts.services change (source "ui";
"import" for the CSV import, as the admin and the command record it).
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.services import audit_record
from contacts.attributes import attribute_display, contacts_tag
from contacts.exporting import contacts_export_csv
from contacts.filters import ContactFilter
from contacts.import_jobs import REPORT_ROWS_SHOWN, contact_import_job_create
from contacts.importing import ImportFileError
from contacts.models import AttributeDefinition, ConsentSource, Contact, ContactImportJob, Tag
from contacts.page_forms import OPT_IN_FIELDS, ContactEditForm, ContactForm, ImportForm
from contacts.selectors import contact_consent_history
from contacts.services import contact_create, contact_restore, contact_soft_delete, contact_update
from links.selectors import contact_clicks
from messaging.feedback.suppressions import contact_suppressions, suppression_lift
from messaging.models import Suppression
from messaging.selectors import voice_calls_for
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
    filters = ContactFilter(data=request.GET, queryset=base.order_by("-created_at", "id").prefetch_related("tags"))
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
                ("optInVoice", "Voice", request.GET.get("optInVoice", "")),
                ("optInRcs", "RCS", request.GET.get("optInRcs", "")),
            ],
            "show_deleted": show_deleted,
            "query": query.urlencode(),
            "tag_names": Tag.objects.values_list("name", flat=True)[:500],
            "tag": request.GET.get("tag", ""),
            "attribute": request.GET.get("attribute", ""),
            "may_tag": request.user.has_perm("contacts.change_contact") and not show_deleted,
        },
    )


def _attribute_rows(contact: Contact) -> list[dict]:
    definitions = {d.name: d for d in AttributeDefinition.objects.all()}
    values = contact.attributes or {}
    return [
        {
            "name": name,
            "label": str(definitions.get(name) or name),
            "value": attribute_display(definitions.get(name), v),
        }
        for name, v in sorted(values.items())
    ]


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
            "tags": contact.tags.all(),
            "attributes": _attribute_rows(contact),
            "history": contact_consent_history(contact=contact)[:200],
            "window": whatsapp_window(contact),
            "dm_url": _dm_url(contact),
            "suppressions": contact_suppressions(contact),
            "calls": voice_calls_for(contact=contact) if request.user.has_perm("messaging.view_message") else [],
            "link_clicks": contact_clicks(contact),
        },
    )


@page_view("contacts.change_contact")
@require_POST
def contact_tags_page(request: HttpRequest) -> HttpResponse:
    """Add or remove tags on the contacts ticked in the list, then back to the same list."""
    ids = request.POST.getlist("contact")[:PAGE_SIZE]
    back = request.POST.get("next", "")
    if not back.startswith("/contacts/"):
        back = reverse("contact_pages:list")
    if not ids:
        messages.error(request, "Tick the contacts to tag first.")
        return redirect(back)
    op = request.POST.get("op")
    names = request.POST.get("tags", "")
    try:
        if not names.strip():
            raise ValidationError("Type the tag names to add or remove.")
        result = contacts_tag(
            contact_ids=[pk for pk in ids if _is_uuid(pk)],
            add=names if op == "add" else "",
            remove=names if op == "remove" else "",
            actor=request.user,
            source=ConsentSource.UI,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(back)
    if op == "add":
        messages.success(request, f"Tagged {result['contacts']} contact(s): {result['added']} tag(s) added.")
    else:
        messages.success(request, f"{result['removed']} tag(s) removed from {result['contacts']} contact(s).")
    return redirect(back)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@page_view("contacts.view_contact", "messaging.lift_suppression")
@require_POST
def contact_suppression_lift_page(request: HttpRequest, contact_id, suppression_id) -> HttpResponse:
    """An Admin lifts one of the suppressions the contact page shows (audited by the service)."""
    contact = get_object_or_404(Contact, pk=contact_id)
    suppression = next((s for s in contact_suppressions(contact) if s.pk == suppression_id), None)
    if suppression is None:
        get_object_or_404(Suppression, pk=suppression_id)  # 404 if unknown; else it is not this contact's
        messages.error(request, "That suppression is not active on this contact's addresses.")
    elif suppression_lift(suppression=suppression, actor=request.user, reason=request.POST.get("reason", "")):
        messages.success(request, f"{suppression.get_channel_display()} suppression lifted: sending may resume.")
    return redirect("contact_pages:detail", contact_id=contact.pk)


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
