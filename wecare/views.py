"""The workspace shell: home and the modules that are not built yet (the Agent page is automation.views)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse

from wecare.pages import page_view, render_page
from wecare.templatetags.shell import NAV

# Modules on the sidebar that have no code yet. Their pages say so rather than pretend.
COMING_SOON = {item.key: item.label for item in NAV if item.soon}


@page_view()
def home(request: HttpRequest) -> HttpResponse:
    return render_page(request, "shell/home.html", {"soon": COMING_SOON.values()})


@page_view()
def coming_soon(request: HttpRequest, module: str) -> HttpResponse:
    if module not in COMING_SOON:
        raise Http404("No such module.")
    return render_page(request, "shell/coming_soon.html", {"module": COMING_SOON[module]})
