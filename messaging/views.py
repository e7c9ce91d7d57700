"""DM pages: the conversation list, one conversation with its composer, and the live thread.

Thin: reads come from messaging.page_selectors / selectors, every send goes through
messaging.services.message_send and so through the one safety gate; a refusal is shown in words.
"""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from contacts.models import Channel, Contact
from contacts.selectors import contact_search_q
from messaging.channels import rcs as rcs_channel
from messaging.channels import sms as sms_channel
from messaging.channels import voice as voice_channel
from messaging.channels import whatsapp as whatsapp_channel
from messaging.models import WhatsAppTemplate
from messaging.page_selectors import approved_templates, conversation_channels, conversation_list, conversation_messages
from messaging.safety import RefusalCode, SafetyRefusal
from messaging.selectors import media_presigned_url, voice_calls_for
from messaging.services import OutgoingMedia, message_send, send_request_build
from messaging.whatsapp_templates import (
    NAMED_FORMAT,
    POSITIONAL,
    TemplateDefinitionError,
    template_needs,
    template_placeholders,
)
from wecare.pages import page_view, render_fragment, render_page, whatsapp_window

PAGE_SIZE = 50
VIEW = ("messaging.view_message", "contacts.view_contact")

# The gate's refusals in plain words; the gate's own reason follows each.
REFUSAL_LEADS = {
    RefusalCode.CONTACT_NOT_FOUND: "This contact no longer exists.",
    RefusalCode.OPT_IN_REQUIRED: "This contact has not opted in to this channel, so nothing was sent.",
    RefusalCode.ADDRESS_MISSING: "This contact has no address for this channel.",
    RefusalCode.PHONE_NOT_ALLOWED: "The WhatsApp number to send from is not one this platform may use.",
    RefusalCode.TEMPLATE_REQUIRED: (
        "The 24-hour window is closed: WhatsApp allows only an approved template until the contact writes again."
    ),
    RefusalCode.CONTENT_INVALID: "The message cannot be sent as written.",
    RefusalCode.TEMPLATE_INVALID: "This template cannot be sent.",
    RefusalCode.TIER_LIMIT: "Today's limit of new WhatsApp conversations is used up.",
    RefusalCode.PLACEHOLDER_MISSING: "The message asks for a detail this contact does not have, with no fallback.",
    RefusalCode.PLACEHOLDER_INVALID: "Filled in with this contact's details, the message cannot be sent.",
}


def refusal_in_words(refusal: SafetyRefusal) -> str:
    lead = REFUSAL_LEADS.get(refusal.code, "The message was refused.")
    reason = refusal.reason[:1].upper() + refusal.reason[1:] if refusal.reason else ""
    return f"{lead} {reason}." if reason and not reason.endswith(".") else f"{lead} {reason}".strip()


@page_view(*VIEW)
def inbox(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("search", "").strip()
    conversations = conversation_list(search_q=contact_search_q(search) if search else None)
    page = Paginator(conversations, PAGE_SIZE).get_page(request.GET.get("page"))
    channels = conversation_channels([c.pk for c in page.object_list])
    for contact in page.object_list:
        contact.channels = channels.get(contact.pk, [])
    return render_page(request, "messaging/inbox.html", {"page": page, "search": search})


def _channels_for(contact: Contact) -> list[dict]:
    """The composer's channels: those the contact opted in to and has an address for."""
    options = []
    for channel in Channel:
        address = contact.email if channel == Channel.EMAIL else contact.phone
        options.append(
            {
                "value": channel.value,
                "label": channel.label,
                "usable": bool(address) and contact.opt_in(channel.value),
                "why_not": (
                    "no address" if not address else ("not opted in" if not contact.opt_in(channel.value) else "")
                ),
            }
        )
    return options


def _default_channel(options: list[dict], asked: str) -> str:
    usable = [o["value"] for o in options if o["usable"]]
    if asked in Channel.values:
        return asked
    return usable[0] if usable else Channel.WHATSAPP.value


def _placeholders(template: WhatsAppTemplate) -> tuple[str, list[str]]:
    """The template's placeholders as the gate reads them; a malformed body has none here (the gate says why)."""
    try:
        return template_placeholders(template.body)
    except TemplateDefinitionError:
        return POSITIONAL, []


def _template_parameters(template: WhatsAppTemplate, data) -> list | dict:
    fmt, names = _placeholders(template)
    values = [data.get(f"param_{index}", "") for index in range(len(names))]
    if fmt == NAMED_FORMAT:
        return dict(zip(names, values, strict=True))
    return values


def _conversation_context(request, contact: Contact, *, channel: str, form: dict | None = None, **extra) -> dict:
    options = _channels_for(contact)
    channel = _default_channel(options, channel)
    window = whatsapp_window(contact)
    templates = list(approved_templates())
    selected_template = None
    template_id = (form or {}).get("template") or request.GET.get("template")
    if template_id:
        selected_template = next((t for t in templates if str(t.pk) == str(template_id)), None)
    params = []
    needs = None
    if selected_template is not None:
        for index, name in enumerate(_placeholders(selected_template)[1]):
            params.append({"index": index, "name": name, "value": (form or {}).get(f"param_{index}", "")})
        needs = template_needs(selected_template)
    return {
        "contact": contact,
        "thread": conversation_messages(contact=contact),
        "window": window,
        "channel": channel,
        "channels": options,
        "channel_usable": next(o["usable"] for o in options if o["value"] == channel),
        "templates": templates,
        "selected_template": selected_template,
        "params": params,
        "template_needs": needs,
        "form": form or {},
        "sms_segments": sms_channel.segment_count((form or {}).get("text", "")),
        "can_send": request.user.has_perm("messaging.send_message"),
        "voice_ids": sorted(voice_channel.voice_ids()),
        "default_voice": settings.VOICE_ID,
        "voice_max_chars": min(settings.VOICE_MAX_CHARS, voice_channel.BODY_MAX_CHARS),
        "rcs_max_chars": min(settings.RCS_MAX_CHARS, rcs_channel.BODY_MAX_CHARS),
        "calls": voice_calls_for(contact=contact, limit=20),
        **extra,
    }


def _media_links(thread) -> None:
    for message in thread:
        message.media_links = [
            {"file": media, "url": media_presigned_url(media), "kind": (media.content_type or "").split("/")[0]}
            for media in message.media.all()
        ]


@page_view(*VIEW)
def conversation(request: HttpRequest, contact_id) -> HttpResponse:
    contact = get_object_or_404(Contact.objects.active(), pk=contact_id)
    context = _conversation_context(request, contact, channel=request.GET.get("channel", ""))
    _media_links(context["thread"])
    return render_page(request, "messaging/conversation.html", context)


@page_view(*VIEW)
@require_GET
def thread(request: HttpRequest, contact_id) -> HttpResponse:
    """The messages of a conversation, polled by the page so that new ones and new ticks appear."""
    contact = Contact.objects.active().filter(pk=contact_id).first()
    if contact is None:
        raise Http404("No such contact.")
    messages_ = conversation_messages(contact=contact)
    _media_links(messages_)
    return render_fragment(
        request, "messaging/_thread.html", {"contact": contact, "thread": messages_, "window": whatsapp_window(contact)}
    )


@page_view("messaging.send_message", *VIEW)
@require_http_methods(["POST"])
def send(request: HttpRequest, contact_id) -> HttpResponse:
    contact = get_object_or_404(Contact.objects.active(), pk=contact_id)
    data = request.POST
    channel = data.get("channel", "")
    kwargs: dict = {"contact_id": contact.pk, "channel": channel, "contact": contact}
    if channel == Channel.EMAIL:
        kwargs.update(subject=data.get("subject", ""), text=data.get("text", ""), html=data.get("html", ""))
    elif channel == Channel.VOICE:
        options = {"voiceId": data.get("voice_id", ""), "textType": data.get("text_type", "TEXT")}
        kwargs.update(text=data.get("text", ""), options={k: v for k, v in options.items() if v})
    elif channel == Channel.RCS:
        replies = [line.strip() for line in data.get("replies", "").splitlines() if line.strip()]
        suggestions = [{"type": "reply", "text": reply} for reply in replies]
        kwargs.update(text=data.get("text", ""), options={"suggestions": suggestions} if suggestions else None)
    elif channel == Channel.WHATSAPP and data.get("kind") == "template":
        template = WhatsAppTemplate.objects.filter(pk=data.get("template") or None).first()
        if template is None:
            return _composer_error(request, contact, channel, "Pick a template to send.")
        needs = template_needs(template)
        buttons = {str(b.index): data.get(f"button_{b.index}", "").strip() for b in needs.buttons}
        kwargs.update(
            template_name=template.name,
            template_language=template.language,
            template_parameters=_template_parameters(template, data),
            template_header=data.get("header", "").strip(),
            template_buttons={index: value for index, value in buttons.items() if value},
        )
        upload = request.FILES.get("media")
        if upload is not None:  # a media header's file; the gate checks it fits the template
            if upload.size > whatsapp_channel.MEDIA_MAX_BYTES:
                error = f"The file is {upload.size} bytes; the largest WhatsApp file is 100 MB."
                return _composer_error(request, contact, channel, error)
            kwargs["media"] = OutgoingMedia(
                content_type=upload.content_type or "application/octet-stream",
                size=upload.size,
                filename=upload.name,
                data=upload,
            )
    else:
        kwargs["text"] = data.get("text", "")
        upload = request.FILES.get("media")
        if upload is not None and channel == Channel.WHATSAPP:
            # Checked from the size Django counted while streaming it to disk, before reading it.
            if upload.size > whatsapp_channel.MEDIA_MAX_BYTES:
                error = f"The file is {upload.size} bytes; the largest WhatsApp file is 100 MB."
                return _composer_error(request, contact, channel, error)
            kwargs["media"] = OutgoingMedia(
                content_type=upload.content_type or "application/octet-stream",
                size=upload.size,
                filename=upload.name,
                data=upload,  # the file itself: streamed to S3, never read whole into memory
            )
    try:
        message_send(send_request_build(**kwargs), requested_by=request.user)
    except SafetyRefusal as refusal:
        return _composer_error(request, contact, channel, refusal_in_words(refusal), code=refusal.code)
    return redirect(f"{reverse('dm:conversation', args=[contact.pk])}?channel={channel}")


def _composer_error(request, contact: Contact, channel: str, error: str, code: str = "") -> HttpResponse:
    context = _conversation_context(request, contact, channel=channel, form=request.POST, error=error, error_code=code)
    _media_links(context["thread"])
    return render_page(request, "messaging/conversation.html", context)


@page_view(*VIEW)
@require_GET
def sms_segments(request: HttpRequest) -> HttpResponse:
    """The SMS segment counter under the composer, counted by the SMS channel's own rule."""
    text = request.GET.get("text", "")
    segments = sms_channel.segment_count(text)
    return render_fragment(
        request,
        "messaging/_segments.html",
        {"segments": segments, "characters": len(text), "limit": sms_channel.BODY_MAX_CHARS},
    )
