"""LocalBlobstore: put/get with digests, all-or-nothing writes, ids that are never paths."""

import hashlib
import io
import os
import stat
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured

from director.blobstore import (
    BlobDigestMismatch,
    BlobIncomplete,
    BlobNotFound,
    BlobTooLarge,
    InvalidBlobId,
    InvalidDigest,
    agent_blobstore_settings,
    blobstore,
)
from director.blobstore.credentials import blobstore_credentials, credentials_file
from director.blobstore.digest import parse_digest
from director.blobstore.local import CHUNK, INCOMING

DATA = b"zookeeper package tarball\n" * 1000
SHA1 = hashlib.sha1(DATA).hexdigest()
SHA256 = hashlib.sha256(DATA).hexdigest()


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_put_answers_id_size_and_digests_and_get_gives_the_bytes_back(store):
    ref = store.put(io.BytesIO(DATA))
    assert (ref.size, ref.sha1, ref.sha256) == (len(DATA), SHA1, SHA256)
    assert ref.digest == f"sha256:{SHA256};{SHA1}"
    with store.get(ref.id) as fh:
        assert fh.read() == DATA
    assert store.exists(ref.id) and store.size(ref.id) == len(DATA)
    # BOSH's DAV layout: <root>/<first byte of sha1(id)>/<id>
    prefix = hashlib.sha1(ref.id.encode()).hexdigest()[:2]
    assert files_under(store.root) == [f"{prefix}/{ref.id}"]


@pytest.mark.parametrize(
    "digest", [SHA1, f"sha1:{SHA1}", f"sha256:{SHA256}", f"sha256:{SHA256};{SHA1}"]
)
def test_get_with_the_right_digest_reads_through(store, digest):
    ref = store.put(io.BytesIO(DATA))
    with store.get(ref.id, digest=digest) as fh:
        assert fh.read() == DATA
    store.verify(ref.id, digest)


def test_a_blob_changed_on_disk_fails_its_digest_and_fetch_leaves_no_file(store, tmp_path):
    ref = store.put(io.BytesIO(DATA))
    store.path(ref.id).write_bytes(DATA.replace(b"zoo", b"moo", 1))
    with pytest.raises(BlobDigestMismatch, match=ref.id), store.get(ref.id, digest=SHA1) as fh:
        fh.read()
    # the strongest algorithm decides, even when the sha1 part would pass
    with pytest.raises(BlobDigestMismatch, match="sha256"):
        store.verify(ref.id, f"sha256:{SHA256};{hashlib.sha1(b'x').hexdigest()}")
    target = tmp_path / "out" / "pkg.tgz"
    target.parent.mkdir()
    with pytest.raises(BlobDigestMismatch):
        store.fetch(ref.id, target, digest=ref.digest)
    assert list(target.parent.iterdir()) == []
    # without a digest the content is what it is
    assert store.fetch(ref.id, target).read_bytes().startswith(b"moo")


@pytest.mark.parametrize(
    "digest, problem",
    [
        ("", "empty"),
        ("md5:abc", "unknown algorithm"),
        (f"sha1:{SHA1};{SHA1}", "given twice"),
        ("sha256:abc", "64 hex digits"),
        (SHA1.upper()[:39], "40 hex digits"),
    ],
)
def test_a_malformed_digest_is_refused_naming_it(digest, problem):
    with pytest.raises(InvalidDigest, match=problem):
        parse_digest(digest)


def test_put_under_a_given_id_replaces_atomically(store):
    ref = store.put(io.BytesIO(b"one"))
    again = store.put(io.BytesIO(b"two"), blob_id=ref.id)
    assert again.id == ref.id
    with store.get(ref.id) as fh:
        assert fh.read() == b"two"


class FailingStream:
    def __init__(self, good: bytes):
        self.good = good

    def read(self, n=-1):
        if self.good:
            out, self.good = self.good, b""
            return out
        raise OSError("connection reset")


def test_a_failed_oversized_or_short_write_leaves_nothing_and_keeps_the_old_blob(store):
    old = store.put(io.BytesIO(b"old content"))
    with pytest.raises(OSError, match="connection reset"):
        store.put(FailingStream(b"new"), blob_id=old.id)
    with pytest.raises(BlobTooLarge, match=old.id):
        store.put(io.BytesIO(b"x" * 101), blob_id=old.id, max_bytes=100)
    with pytest.raises(BlobIncomplete, match="after 3 of 10 bytes"):
        store.put(io.BytesIO(b"new"), blob_id=old.id, expected_size=10)
    with pytest.raises(BlobTooLarge):
        store.put(io.BytesIO(b"x" * 101), max_bytes=100)
    with store.get(old.id) as fh:
        assert fh.read() == b"old content"
    assert len(files_under(store.root)) == 1
    assert list((store.root / INCOMING).iterdir()) == []


class RecordingStream(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.sizes = []

    def read(self, n=-1):
        self.sizes.append(n)
        return super().read(n)


def test_put_reads_in_chunks_never_the_whole_stream(store):
    stream = RecordingStream(os.urandom(3 * CHUNK + 17))
    ref = store.put(stream)
    assert ref.size == 3 * CHUNK + 17
    assert stream.sizes and all(0 < n <= CHUNK for n in stream.sizes)


@pytest.mark.parametrize(
    "bad",
    [
        "../../etc/passwd",
        "..",
        "/etc/passwd",
        "ab/3f2c1b9e-0000-4000-8000-000000000000",
        "3F2C1B9E-0000-4000-8000-000000000000",
        "3f2c1b9e-0000-4000-8000-000000000000/..",
        "3f2c1b9e-0000-4000-8000-00000000000\n",
        "3f2c1b9e-0000-4000-8000-000000000000\n",
        "",
        None,
    ],
)
def test_ids_that_are_not_uuids_are_never_looked_up(store, bad):
    for call in (store.get, store.size, store.exists, store.delete, store.signed_url):
        with pytest.raises(InvalidBlobId):
            call(bad)
    if bad is not None:  # None asks put for a new id
        with pytest.raises(InvalidBlobId):
            store.put(io.BytesIO(b"x"), blob_id=bad)
    assert not store.root.exists() or files_under(store.root) == []


def test_unknown_and_deleted_blobs(store):
    ref = store.put(io.BytesIO(b"x"))
    assert store.delete(ref.id) is True
    assert store.delete(ref.id) is False
    assert not store.exists(ref.id)
    with pytest.raises(BlobNotFound, match=ref.id):
        store.get(ref.id)
    with pytest.raises(BlobNotFound):
        store.size(ref.id)


def test_credentials_are_generated_once_mode_0600_and_shared(store):
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(blobstore_credentials())) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1
    first = results[0]
    assert len({first.agent_password, first.director_password, first.signing_secret}) == 3
    path = credentials_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]
    assert blobstore_credentials() == first
    # a restore that wrote it world-readable is put right on the next read
    os.chmod(path, 0o644)
    os.chmod(path.parent, 0o755)
    assert blobstore_credentials() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_damaged_credentials_are_reported_not_silently_replaced(store):
    blobstore_credentials()
    credentials_file().write_text("{not json")
    with pytest.raises(ImproperlyConfigured, match="credentials.json"):
        blobstore_credentials()
    assert credentials_file().read_text() == "{not json"


def test_agent_settings_block_is_boshs_dav_provider(store, creds):
    assert agent_blobstore_settings() == {
        "provider": "dav",
        "options": {
            "endpoint": "http://testserver/blobstore",
            "user": "agent",
            "password": creds.agent_password,
        },
    }
    # with signed URLs the agent gets no credentials at all (BOSH strips them)
    signed = agent_blobstore_settings(signed_urls=True)
    assert signed == {"provider": "dav", "options": {"endpoint": "http://testserver/blobstore"}}


def test_the_provider_setting_is_checked(settings, store):
    settings.BLOBSTORE = "no.such.Store"
    with pytest.raises(ImproperlyConfigured, match="OPSCONSOLE_BLOBSTORE='no.such.Store'"):
        blobstore()
    settings.BLOBSTORE = "director.blobstore.credentials.BlobstoreCredentials"
    with pytest.raises(ImproperlyConfigured, match="not a director.blobstore.Blobstore"):
        blobstore()
    settings.BLOBSTORE = "director.blobstore.LocalBlobstore"
    assert blobstore().root == store.root
