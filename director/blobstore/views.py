"""The blobstore over HTTP, DAV-style as BOSH's davcli and agents speak it.

Routes (under ``/blobstore/``, i.e. the agents' ``endpoint``):

- ``<pp>/<id>`` (davcli's form; ``<pp>`` is sha1(id)[0] in hex) or ``<id>``:
  ``GET``, ``HEAD``, ``PUT``, ``DELETE`` with HTTP basic auth. ``agent`` may
  GET and HEAD; ``director`` may also PUT (201 created, 204 replaced) and
  DELETE (204).
- ``signed/<pp>/<id>?st=&ts=&e=``: the method the URL was signed for (GET or
  PUT; a GET URL also allows HEAD), without credentials, until it expires.

No credentials or wrong ones: 401. A user or URL that does not allow the
method, an expired or tampered signature: 403. Not a blob id: 400 (ids are
UUIDs, never paths). No such blob: 404. A PUT must say its
``Content-Length`` (411), at most ``BLOBSTORE_MAX_BLOB_BYTES`` (413); its body
is streamed to the store in chunks and stored only whole.

These views have their own authentication, so they are exempt from the
console's login and from CSRF (no session or cookie is consulted).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import FileResponse, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from . import blobstore
from .credentials import AGENT_USER, blobstore_credentials
from .errors import BlobIncomplete, BlobNotFound, BlobTooLarge
from .signing import SignatureRefused, blob_prefix, check_signature

READ_METHODS = ("GET", "HEAD")
AUTH_METHODS = ("GET", "HEAD", "PUT", "DELETE")
SIGNED_METHODS = ("GET", "HEAD", "PUT")
_LENGTH_RE = re.compile(r"[0-9]{1,20}")
_OBJECT_RE = re.compile(
    r"(?:(?P<prefix>[0-9a-f]{2})/)?"
    r"(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)


def _text(status: int, message: str, **headers) -> HttpResponse:
    response = HttpResponse(f"{message}\n", status=status, content_type="text/plain")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


class _BadObject(Exception):
    def __init__(self, response: HttpResponse):
        self.response = response


def _blob_id(object_id: str) -> str:
    """The blob id in ``<pp>/<id>`` or ``<id>``; raises ``_BadObject`` with the answer."""
    match = _OBJECT_RE.fullmatch(object_id)
    if not match:
        raise _BadObject(
            _text(400, f"{object_id[:80]!r} is not a blob path: <pp>/<id> or <id>, id a UUID")
        )
    blob_id = match["id"]
    if match["prefix"] is not None and match["prefix"] != blob_prefix(blob_id):
        raise _BadObject(_text(404, f"blob {blob_id}: not found under {match['prefix']}/"))
    return blob_id


def _basic_auth_user(request) -> str | None:
    """The blobstore user whose name and password the request carries, else None."""
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    expected = blobstore_credentials().password_of(user) if sep else None
    if expected is None or not hmac.compare_digest(password.encode(), expected.encode()):
        return None
    return user


@login_not_required
@csrf_exempt
def blob(request, object_id: str):
    """A blob by id, for the ``agent`` and ``director`` users (basic auth)."""
    user = _basic_auth_user(request)
    if user is None:
        message = (
            "wrong blobstore user or password"
            if request.META.get("HTTP_AUTHORIZATION")
            else "blobstore credentials required"
        )
        return _text(401, message, WWW_Authenticate='Basic realm="blobstore"')
    if request.method not in AUTH_METHODS:
        return _text(405, f"{request.method} is not allowed", Allow=", ".join(AUTH_METHODS))
    if user == AGENT_USER and request.method not in READ_METHODS:
        return _text(403, f"user {AGENT_USER!r} may only read blobs")
    try:
        blob_id = _blob_id(object_id)
    except _BadObject as exc:
        return exc.response
    return _serve(request, blob_id)


@login_not_required
@csrf_exempt
def signed_blob(request, object_id: str):
    """A blob by signed URL: the signed method only, until the URL expires."""
    if request.method not in SIGNED_METHODS:
        return _text(405, f"{request.method} is not allowed", Allow=", ".join(SIGNED_METHODS))
    try:
        blob_id = _blob_id(object_id)
    except _BadObject as exc:
        return exc.response
    secret = blobstore_credentials().signing_secret
    # A URL signed for GET may also HEAD (same bytes, fewer of them).
    methods = ("HEAD", "GET") if request.method == "HEAD" else (request.method,)
    refusal = None
    for method in methods:
        try:
            check_signature(secret, method, object_id, request.GET)
            break
        except SignatureRefused as exc:
            refusal = refusal or exc
    else:
        return _text(403, str(refusal))
    return _serve(request, blob_id)


def _serve(request, blob_id: str) -> HttpResponse:
    store = blobstore()
    try:
        if request.method == "GET":
            return FileResponse(store.get(blob_id), content_type="application/octet-stream")
        if request.method == "HEAD":
            response = HttpResponse(content_type="application/octet-stream")
            response["Content-Length"] = str(store.size(blob_id))
            return response
        if request.method == "DELETE":
            if not store.delete(blob_id):
                raise BlobNotFound(blob_id)
            return HttpResponse(status=204)
        return _put(request, store, blob_id)
    except BlobNotFound:
        return _text(404, f"blob {blob_id}: not found")


def _put(request, store, blob_id: str) -> HttpResponse:
    raw = request.META.get("CONTENT_LENGTH") or ""
    if not _LENGTH_RE.fullmatch(raw):
        return _text(411, "PUT needs a Content-Length (a whole number of bytes)")
    length, limit = int(raw), settings.BLOBSTORE_MAX_BLOB_BYTES
    if length > limit:
        return _text(413, f"blob of {length} bytes: larger than the limit of {limit} bytes")
    existed = store.exists(blob_id)
    try:
        store.put(request, blob_id=blob_id, max_bytes=limit, expected_size=length)
    except BlobTooLarge:
        return _text(413, f"blob {blob_id}: larger than the limit of {limit} bytes")
    except BlobIncomplete as exc:
        return _text(400, str(exc))
    except OSError as exc:  # the client went away mid-body: nothing was stored
        return _text(400, f"blob {blob_id}: the upload broke off ({type(exc).__name__})")
    return HttpResponse(status=204 if existed else 201)
