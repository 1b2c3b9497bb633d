"""A tile's Status and Logs tabs with real agents: vcsim, the VM runtime, nats-server, a worker.

The tile's deployment (named by its guid, as Apply Changes names it) is the
greeter release deployed by the director; the VM runtime plays each VM's
agent. The Status tab then shows each instance running with the vitals its
agent measured, and the Logs tab's request runs the real ``fetch_logs``
task: the tgz it links holds the job's log as the instance wrote it.
"""

from __future__ import annotations

import io
import re
import tarfile
import time

import pytest
import yaml
from django.urls import reverse

from director import services as director_services
from director.models import Instance, Task
from tests.director.execution.conftest import (  # noqa: F401  fixtures of the vcsim tests
    director_env,
    release_tgz,
    stemcell_tgz,
    wait_done,
)
from tests.director.execution.test_agents_vcsim import build_greeter_release, greeter_manifest
from tests.director.heartbeats import agent_listener  # noqa: F401  fixture
from tiles import services

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TILE = """
name: greeter-tile
product_version: '1.0.0'
label: Greeter
stemcell_criteria: {os: ubuntu-jammy, version: '1.0'}
releases: [{name: greeter, version: '1', file: greeter-1.tgz}]
job_types:
- name: web
  resource_label: Web
  instance_definition: {name: instances, type: integer, configurable: true, default: 3}
  resource_definitions: [{name: ram, type: integer, default: 256}]
  templates: [{name: web, release: greeter}]
"""


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {
            m.name.removeprefix("./"): tar.extractfile(m).read()
            for m in tar.getmembers()
            if m.isfile()
        }


@pytest.mark.usefixtures("agent_listener")
def test_status_and_logs_tabs_with_real_agents(request, vm_runtime, admin_user, client, tmp_path):
    env = request.getfixturevalue("director_env")
    services.import_product(TILE.encode(), "greeter.yml", "admin")
    staged = services.stage_product("greeter-tile", "1.0.0")
    wait_done(director_services.upload_release(build_greeter_release(tmp_path / "g.tgz"), "admin"))
    manifest = greeter_manifest(staged.guid, greeting="hello from the tile")
    wait_done(env.deploy(manifest), timeout=600)
    services._mark_deployed(staged, yaml.safe_dump(manifest))
    client.force_login(admin_user)

    # -- Status: every instance with a VM, running, with the vitals its agent sent -----------
    status_url = reverse("product-status", args=[staged.guid])
    load = re.compile(r'<td class="load">\d+\.\d\d, \d+\.\d\d, \d+\.\d\d</td>')
    deadline = time.monotonic() + 30  # the VM runtime heartbeats every second
    while time.monotonic() < deadline:
        page = client.get(status_url).content.decode()
        if len(load.findall(page)) == 4:
            break
        time.sleep(0.5)
    rows = re.findall(r'data-instance="([a-z]+)/', page)
    assert sorted(rows) == ["idle", "web", "web", "web"], page  # the errand has no VM
    assert len(load.findall(page)) == 4, page
    assert page.count(">running</span>") == 4
    assert len(re.findall(r'<td class="memory">\d+% \(', page)) == 4

    # -- Logs: one web instance's logs, fetched by its agent -------------------------------
    web = Instance.objects.filter(deployment__name=staged.guid, group="web").order_by("index")[0]
    logs_url = reverse("product-logs", args=[staged.guid])
    res = client.post(logs_url, {"instances": f"web/{web.uuid}"})
    assert res.status_code == 302
    task = wait_done(Task.objects.get(type="fetch_logs", deployment_name=staged.guid))
    row = client.get(f"{logs_url}?task={task.id}", HTTP_HX_REQUEST="true")
    assert row.status_code == 286
    href = re.search(r'href="(/api/v0/director/resources/[^"]+)"', row.content.decode()).group(1)
    download = client.get(href)
    assert download.status_code == 200
    files = _members(b"".join(download.streaming_content))
    assert "greeting=hello from the tile" in files["web/web.stdout.log"].decode()
