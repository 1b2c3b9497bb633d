"""A deployment's manifest through the director API: credentials only for roles that may see them."""

import pytest

from director.models import Deployment

MANIFEST = """\
name: demo
instance_groups:
- name: web
  jobs:
  - name: web
    release: demo
    properties:
      greeting: hello
      admin:
        identity: admin
        password: s3cr3t-tile-password
"""


@pytest.fixture
def deployment(db):
    return Deployment.objects.create(name="demo", manifest_text=MANIFEST, manifest=MANIFEST)


@pytest.mark.parametrize(
    ("role", "sees"),
    [
        ("full_control", True),
        ("full_view", True),
        ("restricted_control", False),
        ("restricted_view", False),
    ],
)
def test_manifest_secrets_follow_the_role(role_api, deployment, role, sees):
    response = role_api(role).get("/api/v0/director/deployments/demo")
    assert response.status_code == 200
    manifest = response.json()["manifest"]
    assert "greeting: hello" in manifest
    assert ("s3cr3t-tile-password" in manifest) is sees
    if not sees:
        assert "((redacted))" in manifest


def test_admin_sees_the_manifest_as_deployed(admin_api, deployment):
    assert admin_api.get("/api/v0/director/deployments/demo").json()["manifest"] == MANIFEST
