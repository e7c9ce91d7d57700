"""The Link pages: list and create, a link's stats (chart, CSV, QR), enable/disable; and the redirect's
Django door (links.redirect.redirect_answer decides; wecare.wsgi serves /l/ before Django in production)."""

from __future__ import annotations

import csv
import io

import segno
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from links.chart import clicks_chart
from links.models import ShortLink
from links.page_forms import LinkForm
from links.redirect import redirect_answer, response_headers
from links.selectors import link_clicks_for_export, link_clicks_per_day, link_list, link_stats
from links.services import link_create, link_update
from wecare.pages import deny, page_view, render_page
from wecare.spreadsheet import safe_row

QR_SCALE = 8


def short_url(request: HttpRequest, link: ShortLink) -> str:
    path = f"/l/{link.slug}"
    return f"{settings.LINK_BASE_URL}{path}" if settings.LINK_BASE_URL else request.build_absolute_uri(path)


@require_http_methods(["GET", "HEAD"])
def follow(request: HttpRequest, slug: str, token: str | None = None) -> HttpResponse:
    answer = redirect_answer(slug, token, request.META)
    response = HttpResponse(answer.body, status=answer.status, content_type="text/plain; charset=utf-8")
    for name, value in response_headers(answer):
        response[name] = value
    return response


@page_view("links.view_shortlink")
@require_http_methods(["GET", "POST"])
def link_list_page(request: HttpRequest) -> HttpResponse:
    may_create = request.user.has_perm("links.add_shortlink")
    form = LinkForm(request.POST or None)
    if request.method == "POST":
        if not may_create:
            deny(request, "creating short links needs the Operator role")
        if form.is_valid():
            data = form.cleaned_data
            try:
                link = link_create(
                    user=request.user,
                    destination=data["destination"],
                    slug=data["slug"],
                    title=data["title"],
                    utm=form.utm(),
                    expires_at=data["expires_at"],
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            else:
                messages.success(request, f"Short link /l/{link.slug} created.")
                return redirect("link_pages:detail", link_id=link.pk)
    page = Paginator(link_list(), 50).get_page(request.GET.get("page"))
    return render_page(
        request,
        "links/list.html",
        {"page": page, "form": form, "may_create": may_create, "now": timezone.now()},
    )


@page_view("links.view_shortlink")
@require_GET
def link_detail(request: HttpRequest, link_id) -> HttpResponse:
    link = get_object_or_404(ShortLink.objects.select_related("created_by"), pk=link_id)
    days = link_clicks_per_day(link)
    return render_page(
        request,
        "links/detail.html",
        {
            "link": link,
            "short_url": short_url(request, link),
            "stats": link_stats(link),
            "chart": clicks_chart(days, label=f"Clicks per day on /l/{link.slug}, last {len(days)} days"),
            "may_change": request.user.has_perm("links.change_shortlink"),
            "expired": link.is_expired(),
        },
    )


@page_view("links.change_shortlink")
@require_POST
def link_toggle(request: HttpRequest, link_id) -> HttpResponse:
    link = get_object_or_404(ShortLink, pk=link_id)
    enable = request.POST.get("enabled") == "true"
    link_update(link=link, user=request.user, enabled=enable)
    messages.success(request, f"/l/{link.slug} is {'on' if enable else 'off'}.")
    return redirect("link_pages:detail", link_id=link.pk)


@page_view("links.view_shortlink")
@require_GET
def link_qr(request: HttpRequest, link_id, kind: str) -> HttpResponse:
    link = get_object_or_404(ShortLink, pk=link_id)
    qr = segno.make(short_url(request, link), error="m")
    buffer = io.BytesIO()
    if kind == "svg":
        # A standalone document (namespace and XML declaration): an <img> or a print shop can open it.
        qr.save(buffer, kind="svg", scale=QR_SCALE, border=4, title=f"/l/{link.slug}")
    else:
        qr.save(buffer, kind="png", scale=QR_SCALE, border=4)
    body, content_type = buffer.getvalue(), "image/svg+xml" if kind == "svg" else "image/png"
    response = HttpResponse(body, content_type=content_type)
    if request.GET.get("download"):
        response["Content-Disposition"] = f'attachment; filename="link-{link.slug}.{kind}"'
    return response


class _Echo:
    def write(self, value: str) -> str:
        return value


@page_view("links.view_shortlink")
@require_GET
def link_clicks_csv(request: HttpRequest, link_id) -> StreamingHttpResponse:
    link = get_object_or_404(ShortLink, pk=link_id)
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(["clicked_at", "device", "referrer_host", "contact_id", "bulk_job_id"])
        for clicked_at, device, referrer, contact_id, job_id in link_clicks_for_export(link):
            yield writer.writerow(
                safe_row([clicked_at.isoformat(), device, referrer, str(contact_id or ""), str(job_id or "")])
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="clicks-{link.slug}.csv"'
    return response
