"""OpenAPI (drf-spectacular) extensions for the console's own API classes.

``BearerTokenScheme`` tells the schema generator what
``opsconsole.auth.BearerTokenAuthentication`` is: HTTP bearer auth
(``Authorization: Bearer <token>``, a token from ``POST /api/v0/auth/token``),
so ``/api/v0/schema/`` declares it as ``bearerAuth`` on every operation that
accepts it and the docs page offers an "Authorize" box for it.

Extensions register themselves when their module is imported; ``apps.py``
imports this one in ``ready()``.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer <token>`` as an OpenAPI ``http``/``bearer`` security scheme."""

    target_class = "opsconsole.auth.BearerTokenAuthentication"
    name = "bearerAuth"
    match_subclasses = True

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A console API token: `POST /api/v0/auth/token` with username "
            "and password, or created in the UI.",
        }
