"""Segment pages: the list, the builder (Operator and Admin edit, Viewer reads) and its live preview.

Thin: audiences.page_forms reads the form, audiences.spec checks, audiences.services change,
audiences.selectors count. The preview changes nothing, so every role that may see segments runs it.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_http_methods, require_POST

from audiences.models import Segment
from audiences.page_forms import form_from_spec, spec_from_form
from audiences.selectors import segment_preview
from audiences.services import segment_create, segment_delete, segment_update
from audiences.spec import OPS_BY_TYPE, spec_clean, spec_summary
from contacts.models import AttributeDefinition, AttributeType, Channel, Tag
from messaging.models import MessageType
from wecare.pages import deny, page_view, render_fragment, render_page

OPS = [("equals", "equals"), ("contains", "contains"), ("before", "before / less than"),
       ("after", "after / more than"), ("empty", "is empty"), ("notEmpty", "is not empty")]  # fmt: skip
WHATSAPP_KINDS = [(MessageType.TEMPLATE, "an approved template"), (MessageType.TEXT, "free text")]
REASON_WORDS = {
    "OPT_IN_REQUIRED": "not opted in to the channel",
    "ADDRESS_MISSING": "no phone number or email address for the channel",
    "TEMPLATE_REQUIRED": "outside the 24-hour WhatsApp window (free text needs it; a template does not)",
}


@page_view("audiences.view_segment")
def segment_list(request: HttpRequest) -> HttpResponse:
    segments = [{"segment": s, "summary": spec_summary(s.spec)} for s in Segment.objects.all()]
    return render_page(request, "audiences/list.html", {"segments": segments})


def _builder(request, *, segment: Segment | None, form: dict, name: str, description: str, errors=None, status=200):
    definitions = list(AttributeDefinition.objects.all())
    return render_page(
        request,
        "audiences/builder.html",
        {
            "segment": segment,
            "form": form,
            "name": name,
            "description": description,
            "errors": errors or {},
            "definitions": definitions,
            "ops_by_type": {d.name: OPS_BY_TYPE[AttributeType(d.type)] for d in definitions},
            "ops": OPS,
            "tags": Tag.objects.values_list("name", flat=True)[:200],
            "channels": Channel.choices,
            "whatsapp_kinds": WHATSAPP_KINDS,
            "may_edit": request.user.has_perm("audiences.change_segment" if segment else "audiences.add_segment"),
            "may_delete": segment is not None and request.user.has_perm("audiences.delete_segment"),
            "may_send": request.user.has_perm("bulk.add_bulkjob") and request.user.has_perm("messaging.send_message"),
        },
        status=status,
    )


def _save(request, segment: Segment | None):
    spec = spec_from_form(request.POST)
    name, description = request.POST.get("name", ""), request.POST.get("description", "")
    try:
        if segment is None:
            segment = segment_create(name=name, description=description, spec=spec, actor=request.user)
        else:
            segment_update(segment=segment, name=name, description=description, spec=spec, actor=request.user)
    except ValidationError as exc:
        form = form_from_spec(spec)
        return _builder(request, segment=segment, form=form, name=name, description=description,
                        errors=exc.message_dict, status=400)  # fmt: skip
    messages.success(request, f"Segment {segment.name!r} saved.")
    return redirect("audience_pages:detail", segment_id=segment.pk)


@page_view("audiences.add_segment")
@require_http_methods(["GET", "POST"])
def segment_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save(request, None)
    return _builder(request, segment=None, form=form_from_spec({}), name="", description="")


@page_view("audiences.view_segment")
@require_http_methods(["GET", "POST"])
def segment_detail(request: HttpRequest, segment_id) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=segment_id)
    if request.method == "POST":
        if not request.user.has_perm("audiences.change_segment"):
            deny(request, f"{request.user.role} lacks audiences.change_segment")
        return _save(request, segment)
    return _builder(
        request, segment=segment, form=form_from_spec(segment.spec), name=segment.name, description=segment.description
    )


@page_view("audiences.delete_segment")
@require_POST
def segment_delete_page(request: HttpRequest, segment_id) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=segment_id)
    segment_delete(segment=segment, actor=request.user)
    messages.success(request, f"Segment {segment.name!r} deleted.")
    return redirect("audience_pages:list")


def _uuid_or_404(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Http404("No such segment.") from None


@page_view("audiences.view_segment")
@require_POST
def segment_preview_fragment(request: HttpRequest) -> HttpResponse:
    """The builder's live preview of the form as it stands (saved or not): count and gate skips."""
    channel = request.POST.get("channel", Channel.WHATSAPP)
    if channel not in Channel.values:
        channel = Channel.WHATSAPP
    if channel == Channel.WHATSAPP:
        message_type = MessageType.TEXT if request.POST.get("whatsapp_kind") == "text" else MessageType.TEMPLATE
    else:
        message_type = MessageType.EMAIL if channel == Channel.EMAIL else MessageType.TEXT
    saved = request.POST.get("saved_segment")
    try:
        if saved:
            spec = spec_clean(get_object_or_404(Segment, pk=_uuid_or_404(saved)).spec)
        else:
            spec = spec_clean(spec_from_form(request.POST))
    except ValidationError as exc:
        return render_fragment(request, "audiences/_preview.html", {"errors": exc.message_dict})
    preview = segment_preview(spec, channel=channel, message_type=message_type)
    reasons = [{"code": code, "count": count, "words": REASON_WORDS.get(code, "")}
               for code, count in preview.skipped.items()]  # fmt: skip
    return render_fragment(
        request,
        "audiences/_preview.html",
        {"preview": preview, "reasons": reasons, "channel": Channel(channel).label, "summary": spec_summary(spec),
         "message_type": message_type, "skipped": preview.total - preview.will_send},
    )  # fmt: skip
