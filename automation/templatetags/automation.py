"""``{% ai_suggestion contact %}``: the pending AI suggestion beside a DM conversation's composer.

A tag, so the DM view needs no change: the template asks for the suggestion where it shows it.
"""

from __future__ import annotations

from django import template

from automation.selectors import suggestion_for_contact

register = template.Library()


@register.inclusion_tag("automation/_dm_suggestion.html", takes_context=True)
def ai_suggestion(context, contact) -> dict:
    request = context["request"]
    user = request.user
    suggestion = suggestion_for_contact(contact.pk) if user.has_perm("automation.view_aisuggestion") else None
    return {
        "suggestion": suggestion,
        "can_decide": user.has_perm("automation.change_aisuggestion"),
        "next": request.path,
        "csrf_token": context.get("csrf_token"),
    }
