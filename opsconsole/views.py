"""Console-wide views: the health endpoint."""

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse

from .doctor import run_checks


@login_not_required
def health(request):
    """Liveness and readiness in one: 200 when every check passes, 503 otherwise.

    Anonymous callers get only the overall status; logged-in users get each check.
    """
    checks = run_checks(quick=True)
    ok = all(c.ok for c in checks)
    body = {"status": "ok" if ok else "degraded"}
    if request.user.is_authenticated:
        body["checks"] = [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks]
    return JsonResponse(body, status=200 if ok else 503)


def not_found(request, exception=None):
    """404: the API's ``{"errors": ...}`` shape under /api/, Django's page elsewhere."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"errors": {"base": [f"No route {request.path_info}"]}}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)
