"""The Agent page (the queue of AI suggestions) and the decisions taken on it or in a DM conversation.

Thin: reads from automation.selectors, decisions through automation.services (approval sends
through message_send and so the one gate). Refusals are said in words, as in the DM composer.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from automation import bedrock, services
from automation.selectors import suggestion_queue, suggestion_recent_decisions
from automation.templatetags.automation import dm_panel_context
from messaging.safety import SafetyRefusal
from messaging.views import refusal_in_words
from wecare.pages import page_view, render_fragment, render_page

VIEW = "automation.view_aisuggestion"
DECIDE = "automation.change_aisuggestion"
SWITCH = "automation.change_aiconfig"  # Admins


@page_view(VIEW)
def agent(request: HttpRequest) -> HttpResponse:
    config = services.ai_config()
    return render_page(
        request,
        "automation/agent.html",
        {
            "suggestions": list(suggestion_queue()[:100]),
            "decisions": suggestion_recent_decisions(),
            "can_decide": request.user.has_perm(DECIDE),
            "ai_config": config,
            "ai_on": services.ai_enabled_for(""),
            "bedrock": bedrock.bedrock_configured(),
            "can_switch": request.user.has_perm(SWITCH),
            "numbers": services.ai_number_switches(settings.WHATSAPP_PHONE_NUMBER_IDS),
        },
    )


@page_view(VIEW)
@require_GET
def dm_panel(request: HttpRequest, contact_id) -> HttpResponse:
    """The suggestion panel of a DM conversation, polled until a suggestion arrives."""
    return render_fragment(request, "automation/_dm_suggestion.html", dm_panel_context(request, contact_id))


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        target = "/agent/"
    return redirect(target or "/agent/")


def _decide(request: HttpRequest, action, done: str) -> HttpResponse:
    try:
        action()
    except services.SuggestionError as exc:
        messages.error(request, exc.message)
    except SafetyRefusal as refusal:
        messages.error(request, refusal_in_words(refusal))
    else:
        messages.success(request, done)
    return _back(request)


@page_view(DECIDE)
@require_POST
def approve(request: HttpRequest, suggestion_id) -> HttpResponse:
    text = request.POST.get("text")
    return _decide(
        request,
        lambda: services.suggestion_approve(suggestion_id=suggestion_id, user=request.user, text=text),
        "Approved: the reply went to the outbound queue through the safety gate.",
    )


@page_view(DECIDE)
@require_POST
def reject(request: HttpRequest, suggestion_id) -> HttpResponse:
    reason = request.POST.get("reason", "")
    return _decide(
        request,
        lambda: services.suggestion_reject(suggestion_id=suggestion_id, user=request.user, reason=reason),
        "Rejected.",
    )


@page_view(DECIDE)
@require_POST
def feedback(request: HttpRequest, suggestion_id) -> HttpResponse:
    rating, comment = request.POST.get("rating", ""), request.POST.get("comment", "")
    return _decide(
        request,
        lambda: services.suggestion_feedback(
            suggestion_id=suggestion_id, user=request.user, rating=rating, comment=comment
        ),
        "Thank you: the feedback is kept with the suggestion.",
    )


@page_view(SWITCH)
@require_POST
def switch(request: HttpRequest) -> HttpResponse:
    """AI on or off, globally or for one of the platform's WhatsApp numbers (Admins; audited)."""
    number = request.POST.get("phone_number_id", "")
    if number and number not in settings.WHATSAPP_PHONE_NUMBER_IDS:
        messages.error(request, "That is not one of the platform's WhatsApp numbers.")
        return redirect("/agent/")
    enabled = request.POST.get("enabled") == "on"
    services.ai_switch_set(user=request.user, enabled=enabled, phone_number_id=number)
    where = f"for {number}" if number else "for every number"
    messages.success(request, f"AI suggestions turned {'on' if enabled else 'off'} {where}.")
    return redirect("/agent/")
