"""Response headers that every page and API answer carries.

Django's own middleware already sends ``X-Frame-Options: DENY``
(``XFrameOptionsMiddleware``), ``X-Content-Type-Options: nosniff``,
``Referrer-Policy`` and ``Cross-Origin-Opener-Policy`` (``SecurityMiddleware``),
and HSTS when the console serves HTTPS. Django 5.2 has no Content Security
Policy of its own, so this middleware adds ``settings.CONTENT_SECURITY_POLICY``
to every response that does not set one itself.

The policy allows scripts from our own origin only: no inline script, no
``eval``, no CDN. htmx and Swagger UI are vendored under ``/static/``, and the
few behaviours pages need (a confirmation before a destructive form) live in
``static/js/console.js``. Inline ``style`` attributes stay allowed: a style
cannot run code, and progress bars set their width that way.
"""

from django.conf import settings


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = "; ".join(
            f"{directive} {' '.join(sources)}".strip()
            for directive, sources in settings.CONTENT_SECURITY_POLICY.items()
        )

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy:
            response.headers.setdefault("Content-Security-Policy", self.policy)
        return response
