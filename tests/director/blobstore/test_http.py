"""The blobstore over HTTP as agents and the director use it (davcli's DAV requests)."""

import base64
import hashlib
import io
import os
import time
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from director.blobstore import new_blob_id
from director.blobstore.signing import blob_prefix, signature

BLOB = b"compiled package\n" * 4096


def basic(user, password):
    return {
        "HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    }


@pytest.fixture
def agent(creds):
    return basic("agent", creds.agent_password)


@pytest.fixture
def director(creds):
    return basic("director", creds.director_password)


def dav_url(blob_id):
    """Where davcli sends a request: <endpoint>/<first byte of sha1(id)>/<id>."""
    return f"/blobstore/{hashlib.sha1(blob_id.encode()).hexdigest()[:2]}/{blob_id}"


def put(client, url, body, auth=None, **extra):
    return client.generic(
        "PUT", url, body, content_type="application/octet-stream", **(auth or {}), **extra
    )


def signed_path(url):
    parts = urlparse(url)
    assert parts.scheme == "http" and parts.netloc == "testserver"
    return f"{parts.path}?{parts.query}"


def test_director_puts_gets_heads_and_deletes(client, store, director):
    blob_id = new_blob_id()
    url = dav_url(blob_id)
    assert put(client, url, BLOB, director).status_code == 201
    assert put(client, url, BLOB, director).status_code == 204  # replaced
    response = client.get(url, **director)
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(BLOB))
    assert b"".join(response.streaming_content) == BLOB
    head = client.head(url, **director)
    assert (head.status_code, head["Content-Length"], head.content) == (200, str(len(BLOB)), b"")
    # the short form without the prefix names the same blob
    assert client.head(f"/blobstore/{blob_id}", **director).status_code == 200
    assert client.delete(url, **director).status_code == 204
    assert client.get(url, **director).status_code == 404
    assert client.head(url, **director).status_code == 404
    assert client.delete(url, **director).status_code == 404


def test_agent_reads_but_may_not_write_or_delete(client, store, agent):
    ref = store.put(io.BytesIO(BLOB))
    url = dav_url(ref.id)
    response = client.get(url, **agent)
    assert response.status_code == 200 and b"".join(response.streaming_content) == BLOB
    assert client.head(url, **agent).status_code == 200
    refused = put(client, url, b"evil", agent)
    assert refused.status_code == 403 and b"may only read" in refused.content
    assert put(client, dav_url(new_blob_id()), b"evil", agent).status_code == 403
    assert client.delete(url, **agent).status_code == 403
    with store.get(ref.id) as fh:
        assert fh.read() == BLOB


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("agent", "wrong"),
        basic("director", "wrong"),
        basic("admin", "admin"),
        basic("", ""),
        {"HTTP_AUTHORIZATION": "Basic not-base64!"},
        {"HTTP_AUTHORIZATION": "Bearer abc"},
        {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"director").decode()},
    ],
)
def test_missing_or_wrong_credentials_get_401(client, store, creds, headers):
    ref = store.put(io.BytesIO(BLOB))
    for method in ("get", "head", "delete", "post", "options"):
        response = getattr(client, method)(dav_url(ref.id), **headers)
        assert response.status_code == 401, method
        assert response["WWW-Authenticate"] == 'Basic realm="blobstore"'
    assert put(client, dav_url(ref.id), b"x", headers).status_code == 401
    assert creds.agent_password.encode() not in response.content
    assert store.exists(ref.id)


def test_a_password_of_the_other_user_does_not_work(client, store, creds):
    ref = store.put(io.BytesIO(BLOB))
    assert client.get(dav_url(ref.id), **basic("agent", creds.director_password)).status_code == 401


def test_the_console_login_is_not_a_blobstore_credential(client, store, admin_user):
    client.force_login(admin_user)
    ref = store.put(io.BytesIO(BLOB))
    assert client.get(dav_url(ref.id)).status_code == 401


def test_other_methods_are_405(client, store, director):
    response = client.post(dav_url(new_blob_id()), **director)
    assert response.status_code == 405 and "PUT" in response["Allow"]


@pytest.mark.parametrize(
    "path, status",
    [
        ("/blobstore/../../etc/passwd", 400),
        ("/blobstore/%2e%2e/%2e%2e/etc/passwd", 400),
        ("/blobstore/ab/..%2f..%2fsettings.py", 400),
        ("/blobstore/x", 400),
        ("/blobstore/blobstore_auth/credentials.json", 400),
        ("/blobstore/.incoming/x", 400),
        ("/blobstore/3f2c1b9e-0000-4000-8000-000000000000%0A", 404),  # no route
        ("/blobstore/3F2C1B9E-0000-4000-8000-000000000000", 400),
        ("/blobstore/zz/3f2c1b9e-0000-4000-8000-000000000000", 400),
        ("/blobstore/00/3f2c1b9e-0000-4000-8000-000000000000", 404),  # not its prefix
    ],
)
def test_paths_that_are_not_blobs(client, store, director, path, status):
    store.put(io.BytesIO(b"x"))
    for method in ("get", "head", "delete"):
        assert getattr(client, method)(path, **director).status_code == status, method
    assert put(client, path, b"x", director).status_code == status
    assert len([p for p in store.root.rglob("*") if p.is_file()]) == 1


def test_an_unknown_blob_is_404(client, store, director, agent):
    url = f"/blobstore/{new_blob_id()}"
    for auth in (director, agent):
        for method in ("get", "head"):
            response = getattr(client, method)(url, **auth)
            assert response.status_code == 404, method
    assert client.delete(url, **director).status_code == 404


def test_traversal_on_the_signed_route_is_refused(client, store):
    for path in ("/blobstore/signed/../../etc/passwd", "/blobstore/signed/%2e%2e/x?st=a&ts=1&e=1"):
        assert client.get(path).status_code == 400


# --------------------------------------------------------------------------- signed URLs


def test_a_signed_get_url_works_without_credentials_until_it_expires(
    client, store, creds, monkeypatch
):
    ref = store.put(io.BytesIO(BLOB))
    url = store.signed_url(ref.id, "GET", expires_in=60)
    parts = urlparse(url)
    assert parts.path == f"/blobstore/signed/{blob_prefix(ref.id)}/{ref.id}"
    assert set(parse_qs(parts.query)) == {"st", "ts", "e"}
    response = client.get(signed_path(url))
    assert response.status_code == 200 and b"".join(response.streaming_content) == BLOB
    assert client.head(signed_path(url)).status_code == 200
    # a GET URL allows neither PUT nor DELETE
    assert put(client, signed_path(url), b"evil").status_code == 403
    assert client.delete(signed_path(url)).status_code == 405
    # 61 s later it has expired
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 61)
    expired = client.get(signed_path(url))
    assert expired.status_code == 403 and b"expired" in expired.content
    with store.get(ref.id) as fh:
        assert fh.read() == BLOB


def test_a_signed_put_url_uploads_where_the_director_asked(client, store):
    blob_id = new_blob_id()
    url = store.signed_url(blob_id, "PUT", expires_in=60)
    assert put(client, signed_path(url), BLOB).status_code == 201
    with store.get(blob_id, digest="sha256:" + hashlib.sha256(BLOB).hexdigest()) as fh:
        assert fh.read() == BLOB
    # the PUT URL does not read
    assert client.get(signed_path(url)).status_code == 403


def test_a_signature_matches_davclis_algorithm(store, creds):
    """HMAC-SHA256 of VERB + <pp>/<id> + ts + e, base64url without padding (davcli sign)."""
    import hmac

    blob_id = new_blob_id()
    url = store.signed_url(blob_id, "GET", expires_in=3600)
    query = parse_qs(urlparse(url).query)
    ts, e = query["ts"][0], query["e"][0]
    message = f"GET{blob_prefix(blob_id)}/{blob_id}{ts}{e}".encode()
    mac = hmac.new(creds.signing_secret.encode(), message, hashlib.sha256).digest()
    assert query["st"][0] == base64.urlsafe_b64encode(mac).decode().rstrip("=")
    assert e == "3600" and abs(int(ts) - time.time()) < 5


def tampered(url, **changes):
    parts = urlparse(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return f"{parts.path}?{urlencode({k: v for k, v in query.items() if v is not None})}"


def test_tampered_signed_urls_are_403(client, store, creds):
    ref = store.put(io.BytesIO(BLOB))
    other = store.put(io.BytesIO(b"secret other blob"))
    url = store.signed_url(ref.id, "GET", expires_in=60)
    query = parse_qs(urlparse(url).query)
    ts = int(query["ts"][0])
    st = query["st"][0]
    flipped = ("A" if st[0] != "A" else "B") + st[1:]
    forged = signature("not-the-secret", "GET", f"{blob_prefix(ref.id)}/{ref.id}", ts, 60)
    for bad in (
        tampered(url, e="999999"),  # longer life
        tampered(url, ts=str(ts + 3600)),  # later start
        tampered(url, st=flipped),
        tampered(url, st=forged),
        tampered(url, st=None),
        tampered(url, e=None),
        tampered(url, ts="-1"),
        tampered(url, e="1e9"),
        tampered(url)
        .replace(ref.id, other.id)
        .replace(blob_prefix(ref.id) + "/", blob_prefix(other.id) + "/"),
        f"/blobstore/signed/{blob_prefix(ref.id)}/{ref.id}",
    ):
        response = client.get(bad)
        assert response.status_code == 403, bad
        assert b"secret other blob" not in b"".join(getattr(response, "streaming_content", []))


def test_signing_only_get_and_put(store):
    with pytest.raises(ValueError, match="DELETE"):
        store.signed_url(new_blob_id(), "DELETE")
    with pytest.raises(ValueError, match="positive"):
        store.signed_url(new_blob_id(), "GET", expires_in=0)


# --------------------------------------------------------------------------- size and streaming


def test_a_put_bigger_than_the_cap_is_413_before_it_is_read(client, store, director, settings):
    settings.BLOBSTORE_MAX_BLOB_BYTES = 1 << 20
    blob_id = new_blob_id()
    response = put(client, dav_url(blob_id), b"x" * ((1 << 20) + 1), director)
    assert response.status_code == 413 and b"1048576" in response.content
    assert not store.exists(blob_id)
    # the same through a signed PUT URL
    url = store.signed_url(blob_id, "PUT", expires_in=60)
    assert put(client, signed_path(url), b"x" * ((1 << 20) + 1)).status_code == 413
    assert not store.exists(blob_id)
    assert put(client, dav_url(blob_id), b"x" * (1 << 20), director).status_code == 201


def test_a_put_body_is_streamed_not_loaded_into_memory(client, store, director, settings):
    # Django refuses to load a body bigger than this into memory (request.body); the
    # blobstore must not need to.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = os.urandom(5 << 20)
    blob_id = new_blob_id()
    assert put(client, dav_url(blob_id), body, director).status_code == 201
    store.verify(blob_id, "sha256:" + hashlib.sha256(body).hexdigest())


class BrokenBody(io.BytesIO):
    def read(self, n=-1):
        if self.tell() >= 1000:
            raise OSError("client went away")
        return super().read(min(n, 500) if n and n > 0 else 500)


def test_a_put_whose_client_goes_away_is_400_and_keeps_the_old_blob(store, director, rf):
    from director.blobstore import views

    old = store.put(io.BytesIO(b"old"))
    request = rf.generic("PUT", dav_url(old.id), b"", **director)
    request.META["CONTENT_LENGTH"] = "5000"
    request._stream = BrokenBody(b"x" * 5000)
    response = views.blob(request, dav_url(old.id).removeprefix("/blobstore/"))
    assert response.status_code == 400 and b"broke off" in response.content
    with store.get(old.id) as fh:
        assert fh.read() == b"old"


def test_a_put_without_a_length_is_411_and_stores_nothing(client, store, director):
    blob_id = new_blob_id()
    response = client.generic("PUT", dav_url(blob_id), b"", **director, CONTENT_LENGTH="")
    assert response.status_code == 411
    for bad in ("-3", "²", "1e3", " 3"):
        response = client.generic("PUT", dav_url(blob_id), b"abc", **director, CONTENT_LENGTH=bad)
        assert response.status_code == 411, bad
    assert not store.exists(blob_id)
