"""Uploads sent with a progress bar: their redirect comes back as JSON.

The upload forms (Import a Product, Upload stemcell) are plain forms that
post and redirect (with a message for the next page). ``static/js/forms.js``
sends them with ``XMLHttpRequest`` instead, to show how much has gone, and
marks the request with ``X-Upload-Progress: 1``. An ``XMLHttpRequest``
follows a redirect by itself, and the page it fetched would take the
messages meant for the operator; so for such a request a redirect is
answered ``200 {"redirect": "<location>"}`` and the script goes there, where
the messages are shown. Everything else passes untouched.
"""

from __future__ import annotations

from django.http import JsonResponse

HEADER = "X-Upload-Progress"


class UploadRedirectMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.method == "POST"
            and request.headers.get(HEADER) == "1"
            and response.status_code in (301, 302, 303)
            and response.has_header("Location")
        ):
            return JsonResponse({"redirect": response["Location"]})
        return response
