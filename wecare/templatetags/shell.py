"""The workspace's sidebar, in the order the business asked for, showing only what the user may open."""

from __future__ import annotations

from dataclasses import dataclass

from django import template
from django.urls import NoReverseMatch, reverse

from wecare.pages import has_role

register = template.Library()


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    url_name: str
    url_args: tuple = ()
    hint: str = ""
    permission: str | None = None  # None: any signed-in user with a role
    soon: bool = False


# Pay, Docs and Invoice have no module yet: their entries open an honest "coming soon" page.
NAV: tuple[NavItem, ...] = (
    NavItem("pay", "Pay", "coming-soon", ("pay",), soon=True),
    NavItem("link", "Link", "link_pages:list", hint="short links, clicks", permission="links.view_shortlink"),
    NavItem("forms", "Forms", "webforms_pages:list", permission="webforms.view_form"),
    NavItem("docs", "Docs", "coming-soon", ("docs",), soon=True),
    NavItem("invoice", "Invoice", "coming-soon", ("invoice",), soon=True),
    NavItem("dm", "DM", "dm:inbox", hint="WhatsApp / SMS / SES", permission="messaging.view_message"),
    NavItem("contacts", "Contacts", "contact_pages:list", permission="contacts.view_contact"),
    NavItem("bulk", "Bulk Messaging", "bulk_pages:list", permission="bulk.view_bulkjob"),
    NavItem("agent", "Agent", "agent"),
    NavItem("operations", "Operations", "operations", hint="queues, errors", permission="messaging.view_dlqmessage"),
)


def _url(item: NavItem) -> str | None:
    try:
        return reverse(item.url_name, args=item.url_args)
    except NoReverseMatch:  # the module's pages are not wired into this build
        return None


def entries_for(request) -> list[dict]:
    """The sidebar entries this request's user may open, in order, with the current one marked."""
    user = getattr(request, "user", None)
    if user is None or not has_role(user):
        return []
    entries = []
    for item in NAV:
        if item.permission and not user.has_perm(item.permission):
            continue
        url = _url(item)
        if url is None:
            continue
        entries.append({"item": item, "url": url, "active": request.path.startswith(url)})
    return entries


@register.inclusion_tag("shell/sidebar.html", takes_context=True)
def sidebar(context) -> dict:
    return {"entries": entries_for(context.get("request"))}


@register.simple_tag(takes_context=True)
def nav_entries(context) -> list[dict]:
    return entries_for(context.get("request"))
