"""Real release jobs (zookeeper-release, os-conf-release) rendered with their own
example manifests' properties, as the director would render them per instance."""

from __future__ import annotations

import re

import pytest
import yaml

from director.rendering import (
    InstanceJob,
    InstanceToRender,
    RenderError,
    properties_source,
    render_instances,
    resolve_links,
)
from tests.corpus import CORPUS, needs_corpus
from tests.director.rendering.helpers import load_job, manual_net, needs_ruby

pytestmark = [needs_corpus, needs_ruby]

ZK = CORPUS / "releases" / "zookeeper-release"
OS_CONF = CORPUS / "releases" / "os-conf-release"


def render_manifest(manifest, release_dir, release, version, addresses):
    """Render every instance of ``manifest`` (instances placed round-robin over the
    group's AZs, addresses from ``addresses[group]``) in one call."""
    jobs = {}
    for g in manifest["instance_groups"]:
        for j in g["jobs"]:
            jobs[j["name"]] = load_job(release_dir, j["name"], release, version)
    specs = {(release, name): j.spec for name, j in jobs.items()}
    rows = {}
    for g in manifest["instance_groups"]:
        azs = g.get("azs") or [None]
        rows[g["name"]] = [
            {
                "name": g["name"],
                "id": f"{g['name']}-uuid-{i}",
                "index": i,
                "az": azs[i % len(azs)],
                "address": addresses[g["name"]][i],
                "bootstrap": i == 0,
            }
            for i in range(g["instances"])
        ]
    links = resolve_links(manifest, specs, rows)
    instances = []
    for g in manifest["instance_groups"]:
        for row in rows[g["name"]]:
            inst_jobs = []
            for j in g["jobs"]:
                consumed, provided = links.for_job(g["name"], j["name"])
                source = properties_source(
                    j.get("properties"), g.get("properties"), manifest.get("properties")
                )
                inst_jobs.append(InstanceJob(jobs[j["name"]], source, consumed, provided))
            instances.append(
                InstanceToRender(
                    deployment=manifest["name"],
                    group=g["name"],
                    id=row["id"],
                    index=row["index"],
                    az=row["az"],
                    bootstrap=row["bootstrap"],
                    networks={"default": manual_net(row["address"])},
                    jobs=tuple(inst_jobs),
                    persistent_disk=int(g.get("persistent_disk") or 0),
                )
            )
    return render_instances(instances)


def zookeeper_manifest():
    return yaml.safe_load((ZK / "manifests" / "zookeeper.yml").read_text())


ZK_ADDRESSES = {
    "zookeeper": [f"10.0.1.{10 + i}" for i in range(5)],
    "smoke-tests": ["10.0.1.30"],
}


def test_zookeeper_release_renders_with_its_example_manifest():
    out = render_manifest(zookeeper_manifest(), ZK, "zookeeper", "0.0.10", ZK_ADDRESSES)
    assert sorted(out) == ["smoke-tests/smoke-tests-uuid-0"] + [
        f"zookeeper/zookeeper-uuid-{i}" for i in range(5)
    ]

    third = out["zookeeper/zookeeper-uuid-2"].files
    zoo_cfg = third["zookeeper"]["config/zoo.cfg"]
    # the server list is built from the peers link's instances; this instance listens on 0.0.0.0
    servers = re.findall(r"^server\.\d+=.*$", zoo_cfg, re.M)
    assert servers == [
        "server.1=10.0.1.10:2888:3888",
        "server.2=10.0.1.11:2888:3888",
        "server.3=0.0.0.0:2888:3888",
        "server.4=10.0.1.13:2888:3888",
        "server.5=10.0.1.14:2888:3888",
    ]
    for line in (
        "clientPort=2181",
        "clientPortAddress=0.0.0.0",
        "autopurge.purgeInterval=24",
        "tickTime=2000",
        "syncEnabled=true",
        "leaderServes=yes",
        "dataDir=/var/vcap/store/zookeeper",
    ):
        assert line in zoo_cfg.splitlines()
    assert third["zookeeper"]["config/myid"] == "3\n"
    assert third["zookeeper"]["monit"].startswith("check process zookeeper\n")
    assert "exec chpst -u vcap:vcap" in third["zookeeper"]["bin/ctl"]
    assert (
        third["zookeeper"]["config/log4j.properties"]
        == (ZK / "jobs" / "zookeeper" / "templates" / "log4j.properties").read_text()
    )
    assert [
        (e["name"], e["type"]) for e in yaml.safe_load(third["zookeeper"][".bosh/links.json"])
    ] == [
        ("conn", "zookeeper"),
        ("peers", "zookeeper_peers"),
    ]
    assert (
        third["status"]["bin/run"]
        == "#!/bin/bash\n\nexec /var/vcap/jobs/zookeeper/bin/ctl status\n"
    )

    run = out["smoke-tests/smoke-tests-uuid-0"].files["smoke-tests"]["bin/run"]
    assert (
        "export ZOOKEEPER_SERVERS="
        "10.0.1.10:2181,10.0.1.11:2181,10.0.1.12:2181,10.0.1.13:2181,10.0.1.14:2181\n"
    ) in run

    # each instance differs only where its templates use spec or the link
    hashes = {
        k: r.template_hashes["zookeeper"] for k, r in out.items() if k.startswith("zookeeper/")
    }
    assert len(set(hashes.values())) == 5
    assert (
        len({r.template_hashes["status"] for k, r in out.items() if k.startswith("zookeeper/")})
        == 1
    )


def test_zookeeper_manifest_properties_flow_through_the_links():
    manifest = zookeeper_manifest()
    zk_job = manifest["instance_groups"][0]["jobs"][0]
    zk_job["properties"] = {
        "client_port": 3181,
        "quorum_port": 3888,
        "leader_election_port": 4888,
        "tick_time": 1000,
    }
    out = render_manifest(manifest, ZK, "zookeeper", "0.0.10", ZK_ADDRESSES)
    zoo_cfg = out["zookeeper/zookeeper-uuid-0"].files["zookeeper"]["config/zoo.cfg"]
    assert "server.1=0.0.0.0:3888:4888" in zoo_cfg
    assert "server.2=10.0.1.11:3888:4888" in zoo_cfg
    assert "clientPort=3181" in zoo_cfg and "tickTime=1000" in zoo_cfg
    run = out["smoke-tests/smoke-tests-uuid-0"].files["smoke-tests"]["bin/run"]
    assert "ZOOKEEPER_SERVERS=10.0.1.10:3181,10.0.1.11:3181," in run


def test_os_conf_limits_example_renders_with_instance_group_properties():
    manifest = yaml.safe_load((OS_CONF / "manifests" / "limits.yml").read_text())
    out = render_manifest(manifest, OS_CONF, "os-conf", "23.0.0", {"limits-ubuntu": ["10.0.2.5"]})
    files = out["limits-ubuntu/limits-ubuntu-uuid-0"].files
    limits = files["limits_not_recommended"]
    assert limits["etc/limits.conf"] == (
        "# Do not edit this file; it will be overwritten.\n"
        '# Created by BOSH job "limits"\n'
        "small_limits  soft  nofile  1024\n"
        "small_limits  hard  nofile  4096\n"
        "big_limits  soft  nofile  16384\n"
        "big_limits  hard  nofile  16384\n\n"
    )
    # limits_systemd_default_nofile is unset: the if_p block is skipped
    assert "DefaultLimitNOFILE" not in limits["bin/pre-start"]
    assert "cp -f /var/vcap/jobs/limits_not_recommended/etc/limits.conf" in limits["bin/pre-start"]

    users = files["user_add"]["bin/pre-start"]
    crypted = "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/"
    for name in ("small_limits", "big_limits"):
        assert f'useradd --create-home {name} --base-dir "$home_dir"' in users
        assert f"echo '{name}:{crypted}' | chpasswd -e" in users
        assert f"usermod -G vcap,admin,bosh_sudoers,bosh_sshers {name}" in users
    assert 'home_dir="/home"' in users and "/var/vcap/store/home" not in users


# job -> (properties, rendered destination, text it must hold, text it must not hold)
OS_CONF_JOBS = {
    "auditd": (
        {"rules": ["-w /etc/passwd -p wa -k identity"]},
        "bin/pre-start",
        "\n-w /etc/passwd -p wa -k identity\n",
        None,
    ),
    "ca_certs": (
        {"certs": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
        "config/certs.crt",
        "MIIB",
        None,
    ),
    "disable_agent": ({}, "bin/post-start", "sleep 300\n", None),
    "harden_sshd": (
        {"gateway_ports": True},
        "bin/pre-start",
        "echo 'AllowTcpForwarding no'",
        "GatewayPorts no",
    ),
    "iptables": (
        {"iptables": {"nat": {"POSTROUTING": ["-s 10.244.0.0/24 -j MASQUERADE"]}}},
        "bin/enable.sh",
        '-A "pfbr-custom-POSTROUTING"  -s 10.244.0.0/24 -j MASQUERADE',
        None,
    ),
    "limits": (
        {"nofile": {"hard": 65536}},
        "bin/pre-start",
        'NEW_NOFILE="DefaultLimitNOFILE=16384:65536"',
        None,
    ),
    "limits_not_recommended": (
        {"limits_conf": "vcap soft nofile 16384", "limits_systemd_default_nofile": 65536},
        "bin/pre-start",
        'echo "DefaultLimitNOFILE=65536" >> /etc/systemd/system.conf',
        None,
    ),
    "login_banner": (
        {"login_banner": {"text": "Authorized use only"}},
        "bin/pre-start",
        "EOF' > /etc/issue.net\nAuthorized use only\nEOF",
        None,
    ),
    "modprobe": (
        {"modules": ["aufs", "speedstep-lib"]},
        "bin/pre-start",
        "modprobe speedstep-lib || true",
        None,
    ),
    "monit": ({}, "bin/pre-start", "exit 0", "monit reload"),
    "ntpdate": ({"unprivileged_port": True}, "bin/pre-start", "/usr/sbin/ntpdate -u $~", None),
    "post-deploy-script": (
        {"script": "#!/bin/bash\necho deployed"},
        "bin/post-deploy",
        "#!/bin/bash\necho deployed",
        None,
    ),
    "post-stop-script": (
        {"script": "#!/bin/bash\necho stopped"},
        "bin/post-stop",
        "echo stopped",
        None,
    ),
    "pre-start-script": (
        {"script": "#!/bin/bash\necho starting"},
        "bin/pre-start",
        "echo starting",
        None,
    ),
    "pre-stop-script": (
        {"script": "#!/bin/bash\necho stopping"},
        "bin/pre-stop",
        "echo stopping",
        None,
    ),
    "resolv": (
        {"search": "example.org", "options": ["rotate"]},
        "bin/pre-start",
        'echo "search example.org"',
        None,
    ),
    "sysctl": (
        {"sysctl": ["vm.swappiness=10", "net.core.somaxconn=1024"]},
        "bin/pre-start",
        "/etc/sysctl.d/71-bosh-os-conf-sysctl.conf <<EOF\n# Autogenerated by bosh os-conf-release sysctl. Do not edit.\nvm.swappiness=10\nnet.core.somaxconn=1024\nEOF",
        None,
    ),
    "tcp_keepalive": (
        {"tcp_keepalive": {"time": 60}},
        "bin/pre-start",
        "net.ipv4.tcp_keepalive_time=60\nnet.ipv4.tcp_keepalive_intvl=30\n",
        None,
    ),
    "user_add": (
        {"users": [{"name": "ops", "public_key": "ssh-ed25519 AAAA ops@example", "sudo": False}]},
        "bin/pre-start",
        "usermod -G vcap,bosh_sshers ops",
        "chpasswd",
    ),
}


def test_every_os_conf_job_is_covered():
    assert sorted(p.name for p in (OS_CONF / "jobs").iterdir()) == sorted(OS_CONF_JOBS)


def test_all_os_conf_jobs_render_together_on_one_instance():
    jobs = [
        InstanceJob(load_job(OS_CONF, name, "os-conf", "23.0.0"), props)
        for name, (props, *_rest) in OS_CONF_JOBS.items()
    ]
    inst = InstanceToRender(
        "hardening", "base", "b-0", 0, "z1", True, {"default": manual_net("10.0.3.4")}, tuple(jobs)
    )
    files = render_instances([inst])[inst.key].files
    for name, (_props, dest, expected, absent) in OS_CONF_JOBS.items():
        assert expected in files[name][dest], name
        if absent:
            assert absent not in files[name][dest], name
    assert files["iptables"]["monit"].startswith("check file iptables\n")


def test_os_conf_user_add_refuses_a_user_without_credentials():
    j = load_job(OS_CONF, "user_add", "os-conf", "23.0.0")
    inst = InstanceToRender(
        "d",
        "base",
        "b-0",
        0,
        "z1",
        True,
        {"default": manual_net("10.0.3.4")},
        (InstanceJob(j, {"users": [{"name": "ghost"}]}),),
    )
    with pytest.raises(RenderError) as caught:
        render_instances([inst])
    assert "Error filling in template 'pre-start.sh.erb' (line" in str(caught.value)
    assert (
        "User: 'ghost' must contain one of 'crypted_password' or 'public_key' key/values."
        in str(caught.value)
    )
