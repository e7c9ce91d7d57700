"""POST /webhooks/sns/ — Amazon SNS HTTP(S) deliveries of the EUM Social event topic.

Thin on purpose: parse the body (SNS sends text/plain, so request.POST is empty), verify it
(messaging.sns), then hand it to the service. A message that fails verification gets a 4xx, a log
line (403s are also audited by AuditForbiddenMiddleware) and changes nothing. A verified
Notification is stored and queued; the answer is 200 within milliseconds, as SNS wants.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from messaging import inbound, sns
from wecare import jsonsafe

logger = logging.getLogger(__name__)


def _refuse(request: HttpRequest, status: int, reason: str) -> HttpResponse:
    logger.warning(
        "sns webhook refused %s: %s (remote=%s type=%s id=%s)",
        status,
        reason,
        request.META.get("REMOTE_ADDR", ""),
        request.headers.get("x-amz-sns-message-type", ""),
        request.headers.get("x-amz-sns-message-id", ""),
    )
    request.audit_denial_reason = f"SNS message refused: {reason}"
    return HttpResponse(reason, status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_POST
def sns_webhook(request: HttpRequest) -> HttpResponse:
    try:
        body = jsonsafe.loads(request.body)  # the body is at most SNS_MAX_BODY_BYTES (wecare.limits)
    except jsonsafe.JSONTooDeep as exc:
        return _refuse(request, 400, str(exc))
    except (ValueError, UnicodeDecodeError):
        return _refuse(request, 400, "The body is not JSON.")
    headers = {name.lower(): value for name, value in request.headers.items() if name.lower().startswith("x-amz-sns-")}
    try:
        message = sns.verify_message(body, headers=headers)
    except sns.SNSVerificationError as exc:
        return _refuse(request, exc.status, exc.reason)
    except sns.CertificateUnavailable as exc:
        # Possibly genuine: 5xx makes SNS deliver it again later.
        logger.error("sns webhook: signing certificate unavailable: %s", exc)
        return HttpResponse("Signing certificate unavailable, try again.", status=503, content_type="text/plain")

    if message.type == sns.SUBSCRIPTION_CONFIRMATION:
        try:
            sns.confirm_subscription(message)
        except sns.SNSVerificationError as exc:
            return _refuse(request, exc.status, exc.reason)
        except sns.CertificateUnavailable as exc:
            logger.error("sns webhook: could not confirm the subscription: %s", exc)
            return HttpResponse("Confirmation failed, try again.", status=503, content_type="text/plain")
        return HttpResponse("Subscription confirmed.", content_type="text/plain")
    if message.type == sns.UNSUBSCRIBE_CONFIRMATION:
        # Not followed: visiting its SubscribeURL would subscribe again.
        logger.warning(
            "sns webhook: UnsubscribeConfirmation for %s (message %s)", message.topic_arn, message.message_id
        )
        return HttpResponse("Noted.", content_type="text/plain")

    event, queued = inbound.inbound_event_receive(
        sns_message_id=message.message_id, topic_arn=message.topic_arn, body=message.body
    )
    return HttpResponse("Queued." if queued else "Already received.", content_type="text/plain")
