"""``{% ai_suggestion contact %}``: the pending AI suggestion beside a DM conversation's composer.

A tag, so the DM view needs no change: the template asks for the suggestion where it shows it.
"""

from __future__ import annotations

from django import template
from django.urls import reverse

from automation.selectors import suggestion_for_contact

register = template.Library()


def dm_panel_context(request, contact_id) -> dict:
    """What the panel shows: the contact's pending suggestion (if the user may see suggestions)."""
    user = request.user
    may_see = user.has_perm("automation.view_aisuggestion")
    return {
        "contact_id": contact_id,
        "may_see": may_see,
        "suggestion": suggestion_for_contact(contact_id) if may_see else None,
        "can_decide": user.has_perm("automation.change_aisuggestion"),
        "next": reverse("dm:conversation", args=[contact_id]),
    }


@register.inclusion_tag("automation/_dm_suggestion.html", takes_context=True)
def ai_suggestion(context, contact) -> dict:
    return {**dm_panel_context(context["request"], contact.pk), "csrf_token": context.get("csrf_token")}
