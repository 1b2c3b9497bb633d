"""template_hashes, configuration_hash and the rendered templates archive."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

from director.rendering import InstanceJob, render_instances
from tests.director.rendering.helpers import instance, job, needs_ruby

pytestmark = needs_ruby

LINKS_JSON_EMPTY = "[]\n"


def two_jobs(port=8080, dest="config/server.conf"):
    web = job(
        "web",
        templates={
            "server.conf.erb": (dest, "port=<%= p('port') %>\n"),
            "ctl.erb": ("bin/ctl", "#!/bin/bash\nexec web --port <%= p('port') %>\n"),
        },
        properties={"port": {"default": 80}},
        monit="check process web\n",
    )
    agent = job("agent", templates={"a.erb": ("etc/a", "id=<%= spec.id %>\n")})
    provided = [{"name": "http", "type": "http", "group": "3"}]
    return instance(
        [InstanceJob(web, {"port": port}, {}, provided), InstanceJob(agent, {})],
        id="inst-1",
    )


def test_template_hashes_follow_boshs_formula():
    inst = two_jobs()
    rendered = render_instances([inst])[inst.key]
    links_json = '[\n  {\n    "name": "http",\n    "type": "http",\n    "group": "3"\n  }\n]\n'
    assert rendered.files["web"][".bosh/links.json"] == links_json
    # monit, then each file's contents in the order of their source paths
    web = hashlib.sha1(
        (
            "check process web\n"
            + links_json  # .bosh/links.json sorts first
            + "#!/bin/bash\nexec web --port 8080\n"  # ctl.erb
            + "port=8080\n"  # server.conf.erb
        ).encode()
    ).hexdigest()
    agent = hashlib.sha1(("" + LINKS_JSON_EMPTY + "id=inst-1\n").encode()).hexdigest()
    assert rendered.template_hashes == {"web": web, "agent": agent}


def test_configuration_hash_follows_boshs_formula():
    inst = two_jobs()
    rendered = render_instances([inst])[inst.key]
    links_json = rendered.files["web"][".bosh/links.json"]
    digest = hashlib.sha1()
    # jobs by name; per job: monit + name + (contents + dest per file, by source path)
    digest.update(
        ("" + "agent" + LINKS_JSON_EMPTY + ".bosh/links.json" + "id=inst-1\n" + "etc/a").encode()
    )
    digest.update(
        (
            "check process web\n"
            + "web"
            + links_json
            + ".bosh/links.json"
            + "#!/bin/bash\nexec web --port 8080\n"
            + "bin/ctl"
            + "port=8080\n"
            + "config/server.conf"
        ).encode()
    )
    assert rendered.configuration_hash == digest.hexdigest()


def test_configuration_hash_changes_with_a_property_or_a_destination_only():
    base = render_instances([two_jobs()])
    again = render_instances([two_jobs()])
    other_port = render_instances([two_jobs(port=9090)])
    other_dest = render_instances([two_jobs(dest="config/elsewhere.conf")])
    key = two_jobs().key
    assert base[key].configuration_hash == again[key].configuration_hash
    assert base[key].configuration_hash != other_port[key].configuration_hash
    assert base[key].template_hashes["agent"] == other_port[key].template_hashes["agent"]
    assert base[key].template_hashes["web"] != other_port[key].template_hashes["web"]
    # same contents, new destination: the files move, so the configuration changed
    assert base[key].template_hashes == other_dest[key].template_hashes
    assert base[key].configuration_hash != other_dest[key].configuration_hash


def test_archive_has_boshs_layout_and_is_reproducible():
    inst = two_jobs()
    rendered = render_instances([inst])[inst.key]
    blob = rendered.archive()
    assert blob == render_instances([two_jobs()])[inst.key].archive()
    assert gzip.decompress(blob)  # a gzip stream
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        files = {n for n, m in members.items() if m.isfile()}
        assert files == {
            "./web/monit",
            "./web/config/server.conf",
            "./web/bin/ctl",
            "./web/.bosh/links.json",
            "./agent/monit",
            "./agent/etc/a",
            "./agent/.bosh/links.json",
        }
        assert {m.mode for n, m in members.items() if m.isfile()} == {0o644}
        assert members["./web/bin"].isdir()
        assert tar.extractfile("./web/bin/ctl").read() == b"#!/bin/bash\nexec web --port 8080\n"
        assert json.loads(tar.extractfile("./web/.bosh/links.json").read()) == [
            {"name": "http", "type": "http", "group": "3"}
        ]
