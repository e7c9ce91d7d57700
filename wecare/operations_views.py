"""The operations page (Admins): queues and DLQs, sends, delivery, failures, tier use, rate limits, errors.

The page polls its live part every 30 seconds with htmx (``operations/live/``): no reload, no script
of our own. Replaying a DLQ is a POST that goes through messaging.dlq like the API and the admin.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from accounts.services import audit_record
from messaging.dlq import dlq_names, dlq_replay
from wecare import charts, operations
from wecare.pages import page_view, render_fragment, render_page

VIEW_PERMISSION = "messaging.view_dlqmessage"  # Admins only: Viewers and Operators do not hold it
REPLAY_PERMISSION = "messaging.replay_dlqmessage"
POLL_SECONDS = 30


def _live_context(request: HttpRequest) -> dict:
    sends = operations.sends_per_minute()
    tiers = operations.tier_use()
    limits = operations.rate_limit_saturation()
    failures = operations.failures_by_reason()
    return {
        "queues": operations.queue_overview(),
        "may_replay": request.user.has_perm(REPLAY_PERMISSION),
        "sends_chart": charts.line_chart(sends, label="Messages sent per minute per channel, last 24 hours"),
        "rates": operations.delivery_rates(),
        "failures_chart": charts.bar_chart(
            [(row["reason"], row["count"]) for row in failures], label="Failures by reason, last 24 hours"
        ),
        "tiers": tiers,
        "tier_chart": charts.bar_chart(
            [(row["phone_number_id"], row["percent"]) for row in tiers],
            label="WhatsApp tier use per number (%)",
            unit="%",
            maximum=100,
            threshold=80,
        ),
        "limits_chart": charts.bar_chart(
            [(row["bucket"], row["percent"]) for row in limits],
            label="Rate-limit saturation per bucket (%)",
            unit="%",
            maximum=100,
        ),
        "errors": operations.recent_errors(),
        "poll_seconds": POLL_SECONDS,
    }


@require_GET
@page_view(VIEW_PERMISSION)
def operations_page(request: HttpRequest) -> HttpResponse:
    return render_page(request, "shell/operations.html", _live_context(request))


@require_GET
@page_view(VIEW_PERMISSION)
def operations_live(request: HttpRequest) -> HttpResponse:
    return render_fragment(request, "shell/operations_live.html", _live_context(request))


@require_POST
@page_view(VIEW_PERMISSION, REPLAY_PERMISSION)
def operations_replay(request: HttpRequest, queue: str) -> HttpResponse:
    if queue not in dlq_names():
        raise Http404("No such dead-letter queue.")
    result = dlq_replay(queue)
    audit_record(
        user=request.user, action="dlq.replay", resource_type="dlq", resource_id=queue, details=result.as_dict()
    )
    messages.success(
        request,
        f"{queue}: {result.received} received, {len(result.replayed)} replayed, {len(result.failed)} failed again, "
        f"{len(result.parked)} parked.",
    )
    return redirect("operations")
