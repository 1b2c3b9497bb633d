"""The blobstore through a real HTTP server and socket, as an agent's davcli reaches it."""

import base64
import hashlib
import io
import os
import urllib.error
import urllib.request

import pytest

from director.blobstore import new_blob_id
from director.blobstore.signing import prefixed_id


def request(url, method="GET", data=None, auth=None):
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Length", str(len(data)))
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.django_db(transaction=True)
def test_davcli_round_trip_over_a_socket(live_server, store, creds, settings):
    settings.BLOBSTORE_ENDPOINT = f"{live_server.url}/blobstore"
    body = os.urandom(3 << 20)
    blob_id = new_blob_id()
    director = f"director:{creds.director_password}"
    agent = f"agent:{creds.agent_password}"
    dav = f"{live_server.url}/blobstore/{prefixed_id(blob_id)}"

    assert request(dav, "PUT", body, auth=director)[0] == 201
    status, got = request(dav, auth=agent)
    assert status == 200 and hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
    assert request(dav, auth=f"agent:{creds.director_password}")[0] == 401
    assert request(dav, "PUT", b"evil", auth=agent)[0] == 403

    # the director hands an agent a signed PUT URL, the agent uploads without credentials
    upload_id = new_blob_id()
    assert request(store.signed_url(upload_id, "PUT", 60), "PUT", body)[0] == 201
    status, got = request(store.signed_url(upload_id, "GET", 60))
    assert status == 200 and got == body
    assert request(store.signed_url(upload_id, "GET", 60), "PUT", b"evil")[0] == 403
    store.verify(upload_id, "sha256:" + hashlib.sha256(body).hexdigest())


@pytest.mark.django_db(transaction=True)
def test_the_vm_runtimes_agent_client_speaks_to_it(live_server, store, settings, tmp_path):
    """The agent side (tools/vmruntime) with the settings block the CPI hands every VM."""
    from director.blobstore import agent_blobstore_settings
    from tools.vmruntime.blobs import BlobError, BlobstoreClient

    settings.BLOBSTORE_ENDPOINT = f"{live_server.url}/blobstore"
    package = os.urandom(1 << 20)
    ref = store.put(io.BytesIO(package))
    agent = BlobstoreClient(agent_blobstore_settings(), tmp_path / "scratch", retry_wait=0)

    assert agent.get(ref.id, ref.digest).read_bytes() == package
    assert agent.get(ref.id, ref.sha1).read_bytes() == package
    with pytest.raises(BlobError, match="expected sha256"):
        agent.get(ref.id, "sha256:" + "0" * 64)

    # uploads go to a signed PUT URL the director chose (the agent user only reads)
    compiled = tmp_path / "compiled.tgz"
    compiled.write_bytes(os.urandom(4096))
    upload_id = new_blob_id()
    _, digests = agent.put(compiled, signed_url=store.signed_url(upload_id, "PUT", 60))
    store.verify(upload_id, digests["sha1"])
    with pytest.raises(BlobError, match="HTTP 403"):
        agent.put(compiled)
