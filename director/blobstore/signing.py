"""Signed, expiring blob URLs in BOSH's form (davcli ``sign``, nginx ``secure_link_hmac``).

A signed URL is ``<endpoint>/signed/<pp>/<id>?st=<sig>&ts=<unix time>&e=<seconds>``
where ``<pp>`` is the first byte of sha1(id) in hex, and ``sig`` is the
unpadded base64url HMAC-SHA256, under the blobstore's signing secret, of
``<VERB><pp>/<id><ts><e>``. It allows that verb on that blob until ``ts + e``.
The verb is the request's method, so a GET URL cannot be used to PUT.
Pure functions: no settings, no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from urllib.parse import urlencode

_INT = re.compile(r"^[0-9]{1,12}$")


class SignatureRefused(Exception):
    """A signed request that may not proceed; ``str()`` says why (expired, wrong...)."""


def blob_prefix(blob_id: str) -> str:
    """The two hex digits BOSH's DAV store files a blob under: sha1(id)[0]."""
    return hashlib.sha1(blob_id.encode()).hexdigest()[:2]


def prefixed_id(blob_id: str) -> str:
    return f"{blob_prefix(blob_id)}/{blob_id}"


def signature(secret: str, verb: str, object_id: str, ts: int, expires_in: int) -> str:
    message = f"{verb.upper()}{object_id}{ts}{expires_in}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_url(
    endpoint: str,
    secret: str,
    blob_id: str,
    verb: str,
    expires_in: int,
    now: float | None = None,
) -> str:
    ts = int(time.time() if now is None else now)
    object_id = prefixed_id(blob_id)
    query = urlencode(
        {"st": signature(secret, verb, object_id, ts, int(expires_in)), "ts": ts, "e": expires_in}
    )
    return f"{endpoint.rstrip('/')}/signed/{object_id}?{query}"


def check_signature(
    secret: str, method: str, object_id: str, params, now: float | None = None
) -> None:
    """Refuse (``SignatureRefused``) unless ``params`` (``st``, ``ts``, ``e``) sign
    ``method`` on ``object_id`` and have not expired."""
    st, ts, e = (params.get(k) for k in ("st", "ts", "e"))
    if not st or not ts or not e:
        raise SignatureRefused("a signed URL needs st, ts and e")
    if not _INT.match(ts) or not _INT.match(e):
        raise SignatureRefused("ts and e must be whole numbers of seconds")
    expected = signature(secret, method, object_id, int(ts), int(e))
    if not hmac.compare_digest(expected.encode(), st.encode()):
        raise SignatureRefused(f"the signature does not allow {method.upper()} on this blob")
    if (time.time() if now is None else now) > int(ts) + int(e):
        raise SignatureRefused("this signed URL has expired")
