from __future__ import annotations

from accounts.services import audit_forbidden


class AuditForbiddenMiddleware:
    """Every 403 — admin, API or page — leaves an audit entry saying who, what and why.

    Views and permission classes may explain the refusal by setting
    ``request.audit_denial_reason``; otherwise the reason is the generic one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 403:
            match = getattr(request, "resolver_match", None)
            kwargs = match.kwargs if match else {}
            resource_id = next(iter(kwargs.values()), "") if kwargs else ""
            audit_forbidden(
                user=getattr(request, "user", None),
                resource_type=(match.view_name if match else "") or request.path,
                resource_id=resource_id,
                reason=getattr(request, "audit_denial_reason", "permission denied"),
                details={"method": request.method, "path": request.path},
            )
        return response
