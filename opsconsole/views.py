"""Console-wide views: the health endpoint, the login page and the API docs page."""

from django import forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required, login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from . import throttle
from .doctor import run_checks


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form, logging in through the login throttle (``opsconsole.throttle``)."""

    locked_out: throttle.LockedOut | None = None

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            try:
                self.user_cache = throttle.authenticate(self.request, username, password)
            except throttle.LockedOut as locked:
                self.locked_out = locked
                raise forms.ValidationError(locked.message, code="locked_out") from None
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class LoginView(auth_views.LoginView):
    """The login page; a locked user name or address gets the lockout message and a 429."""

    template_name = "login.html"
    form_class = ThrottledAuthenticationForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.locked_out is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.locked_out.retry_after)
        return response


# Under /api/, which LoginRequiredMiddleware leaves to the API's own 401: say it here.
@login_required
def api_docs(request):
    """Swagger UI on ``/api/v0/schema/``, served from /static/ (no CDN, no inline script)."""
    return render(request, "api_docs.html", {"schema_url": reverse("api-schema")})


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
    """404: the API's ``{"errors": ...}`` shape under /api/, a page with a way back elsewhere
    (to the page the operator came from when it is one of ours, and to the dashboard)."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"errors": {"base": [f"No route {request.path_info}"]}}, status=404)
    back = request.META.get("HTTP_REFERER", "")
    if back and not url_has_allowed_host_and_scheme(
        back, {request.get_host()}, require_https=request.is_secure()
    ):
        back = ""
    return render(request, "404.html", {"back": back}, status=404)
