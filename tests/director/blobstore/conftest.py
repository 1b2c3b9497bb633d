"""A blobstore of the test's own: blobs and credentials under tmp_path."""

import pytest

from director.blobstore import LocalBlobstore, blobstore
from director.blobstore.credentials import blobstore_credentials


@pytest.fixture
def store(settings, tmp_path) -> LocalBlobstore:
    settings.BLOBSTORE = "local"
    settings.BLOBSTORE_DIR = tmp_path / "blobstore"
    settings.BLOBSTORE_AUTH_DIR = tmp_path / "blobstore_auth"
    settings.BLOBSTORE_ENDPOINT = "http://testserver/blobstore"
    return blobstore()


@pytest.fixture
def creds(store):
    return blobstore_credentials()
