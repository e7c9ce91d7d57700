"""The browser's way in through the identity provider: start, callback, and the refusal page."""

from __future__ import annotations

import logging

from django.contrib import auth
from django.http import Http404, HttpResponse
from django.shortcuts import render
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from accounts.services import SignInRefused, signin_audit
from wecare import oidc

logger = logging.getLogger("wecare.auth")


# RFC 6749 §4.1.2.1 and OpenID Connect Core §3.1.2.6 error codes, in our words.
PROVIDER_ERRORS = {
    "access_denied": "the identity provider denied access (the sign-in was cancelled or not allowed)",
    "invalid_request": "the identity provider rejected the sign-in request",
    "unauthorized_client": "this application is not allowed to sign in at the identity provider",
    "unsupported_response_type": "the identity provider does not support this sign-in",
    "invalid_scope": "the identity provider rejected the requested scopes",
    "server_error": "the identity provider had an error",
    "temporarily_unavailable": "the identity provider is temporarily unavailable",
    "login_required": "the identity provider requires you to sign in",
    "interaction_required": "the identity provider requires you to interact with it",
    "consent_required": "the identity provider requires your consent",
}


def provider_error_in_words(code: str) -> str:
    """A fixed sentence for a known error code; never the text of the link itself."""
    return PROVIDER_ERRORS.get(code, "the identity provider refused the sign-in")


def render_refusal(request, refusal: SignInRefused) -> HttpResponse:
    """A clear page saying why the sign-in did not happen, with the matching HTTP status."""
    if refusal.status == 403:
        # AuditForbiddenMiddleware records every 403; this says why.
        request.audit_denial_reason = refusal.reason
    return render(
        request,
        "registration/signin_refused.html",
        {
            "reason": refusal.reason,
            "status": refusal.status,
            "no_role": refusal.reason.startswith("no role"),
            # The provider still has a session: offer to end it, so another account can sign in.
            "provider_logout_url": oidc.logout_url(request) if oidc.oidc_enabled() else "",
        },
        status=refusal.status,
    )


class OIDCAuthenticateView(OIDCAuthenticationRequestView):
    """Redirects to the provider's authorization endpoint with state, nonce and a PKCE challenge."""

    def __init__(self, *args, **kwargs):
        # The parent reads the endpoint here; discovery waits for get(), where a failure is handled.
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    def get(self, request):
        if not oidc.oidc_enabled():
            raise Http404("Cognito sign-in is not configured.")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = oidc.endpoint("authorization_endpoint")
        except oidc.ProviderUnavailable as exc:
            refusal = SignInRefused(f"the identity provider is unavailable: {exc}", status=503)
            signin_audit(request=request, outcome="failure", method="oidc", reason=refusal.reason)
            return render_refusal(request, refusal)
        self.OIDC_RP_CLIENT_ID = oidc.client_id()
        return super().get(request)


class OIDCCallbackView(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back. Every way this can fail is audited and explained."""

    def fail(self, reason: str, *, status: int) -> HttpResponse:
        refusal = SignInRefused(reason, status=status)
        signin_audit(request=self.request, outcome="failure", method="oidc", reason=reason)
        return render_refusal(self.request, refusal)

    def get(self, request):
        if not oidc.oidc_enabled():
            raise Http404("Cognito sign-in is not configured.")
        states = request.session.get("oidc_states")
        state = request.GET.get("state", "")
        if request.GET.get("error"):
            # Anyone can link a browser here with ?error=...: the answer changes nothing for a
            # signed-in person (no sign-out) and shows none of the link's text, only our own words
            # for the standard OAuth error codes. A matching state is dropped so it cannot be reused.
            if state and isinstance(states, dict) and states.pop(state, None) is not None:
                request.session["oidc_states"] = states
            return self.fail(provider_error_in_words(request.GET.get("error", "")), status=401)

        code = request.GET.get("code")
        if not code or not state:
            return self.fail("the provider's answer lacks the code or the state", status=400)
        if not isinstance(states, dict) or not states:
            return self.fail(
                "no sign-in was started in this browser session (it may have expired, or cookies are blocked)",
                status=400,
            )
        if state not in states:
            return self.fail("the state does not match a sign-in started in this browser session", status=400)

        entry = states.pop(state)
        request.session["oidc_states"] = states
        # Save now: authenticating is slow, and a parallel tab must not see this state again.
        request.session.save()
        request.session = request.session.__class__(request.session.session_key)

        self.user = auth.authenticate(
            request=request, nonce=entry.get("nonce"), code_verifier=entry.get("code_verifier")
        )
        if self.user is not None and self.user.is_active:
            return self.login_success()
        refusal = getattr(request, "signin_refusal", None)
        if refusal is None:
            return self.fail("sign-in failed", status=401)
        return render_refusal(request, refusal)
