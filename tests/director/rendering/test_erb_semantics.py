"""BOSH's ERB semantics, one template at a time, through the real ruby renderer."""

from __future__ import annotations

import pytest

from director.rendering import render_instances
from tests.director.rendering.helpers import instance, job, manual_net, needs_ruby

pytestmark = needs_ruby

SPEC_PROPERTIES = {
    "port": {"default": 8080},
    "name": {},
    "tls.enabled": {"default": True},
    "tls.cert": {},
    "db.host": {"default": "localhost"},
    "db.port": {"default": 5432},
    "users": {"default": []},
    "old_name": {},
    "new_name": {},
}


def render_one(erb, properties=None, links=None, **instance_kw):
    j = job(templates={"t.erb": ("config/t", erb)}, properties=SPEC_PROPERTIES)
    inst = instance([(j, properties or {}, links or {})], **instance_kw)
    return render_instances([inst])[inst.key].files["web"]["config/t"]


# (id, template, manifest properties, expected output)
PROPERTY_CASES = [
    ("set", "<%= p('port') %>", {"port": 9000}, "9000"),
    ("spec default", "<%= p('port') %>", {}, "8080"),
    ("nested dotted", "<%= p('db.host') %>:<%= p('db.port') %>", {"db": {"host": "pg"}}, "pg:5432"),
    ("nested default", "<%= p('tls.enabled') %>", {}, "true"),
    ("false is set", "<%= p('tls.enabled') %>", {"tls": {"enabled": False}}, "false"),
    ("null takes default", "<%= p('port') %>", {"port": None}, "8080"),
    ("call default unset", "<%= p('name', 'anon') %>", {}, "anon"),
    ("call default ignored", "<%= p('name', 'anon') %>", {"name": "bob"}, "bob"),
    ("array first set", "<%= p(['old_name', 'new_name']) %>", {"new_name": "n"}, "n"),
    ("array order", "<%= p(['old_name', 'new_name']) %>", {"old_name": "o", "new_name": "n"}, "o"),
    ("array default", "<%= p(['old_name', 'new_name'], 'none') %>", {}, "none"),
    ("hash value", "<%= p('db').keys.sort.join(',') %>", {"db": {"host": "h"}}, "host,port"),
    (
        "list",
        "<%= p('users').map { |u| u['name'] }.join(' ') %>",
        {"users": [{"name": "a"}, {"name": "b"}]},
        "a b",
    ),
    ("undeclared dropped", "<%= p('secret', 'gone') %>", {"secret": "x"}, "gone"),
    ("if_p set", "<% if_p('name') do |n| %>hi <%= n %><% end %>", {"name": "ann"}, "hi ann"),
    ("if_p unset", "<% if_p('name') do |n| %>hi<% end %>", {}, ""),
    (
        "if_p several",
        "<% if_p('name', 'port') do |n, pt| %><%= n %>@<%= pt %><% end %>",
        {"name": "a"},
        "a@8080",
    ),
    ("if_p else", "<% if_p('name') do |n| %>yes<% end.else do %>no<% end %>", {}, "no"),
    (
        "if_p else skipped",
        "<% if_p('name') do |n| %>yes<% end.else do %>no<% end %>",
        {"name": "x"},
        "yes",
    ),
    (
        "if_p false is set",
        "<% if_p('tls.enabled') do |e| %>set <%= e %><% end.else do %>unset<% end %>",
        {"tls": {"enabled": False}},
        "set false",
    ),
    (
        "else_if_p",
        "<% if_p('old_name') do |o| %>old <%= o %><% end.else_if_p('new_name') do |n| %>new <%= n %><% end.else do %>none<% end %>",
        {"new_name": "b"},
        "new b",
    ),
    (
        "else_if_p falls to else",
        "<% if_p('old_name') do |o| %>old<% end.else_if_p('new_name') do |n| %>new<% end.else do %>none<% end %>",
        {},
        "none",
    ),
    ("deprecated properties struct", "<%= properties.db.host %>", {}, "localhost"),
    ("trim mode", "a\n<% x = 1 -%>\nb", {}, "a\nb"),
]


@pytest.mark.parametrize(
    "template,properties,expected",
    [c[1:] for c in PROPERTY_CASES],
    ids=[c[0] for c in PROPERTY_CASES],
)
def test_properties(template, properties, expected):
    assert render_one(template, properties) == expected


NETS = {
    "default": manual_net("10.0.0.10"),
    "backend": manual_net("192.168.5.7", gateway="192.168.5.1", default=None),
}

# (id, template, instance keywords, expected output)
SPEC_CASES = [
    ("name", "<%= spec.name %>", {}, "web"),
    ("id", "<%= spec.id %>", {"id": "abc-123"}, "abc-123"),
    ("index", "<%= spec.index + 1 %>", {"index": 3}, "4"),
    ("az", "<%= spec.az %>", {"az": "z2"}, "z2"),
    ("deployment", "<%= spec.deployment %>", {"deployment": "prod"}, "prod"),
    ("bootstrap true", "<%= spec.bootstrap %>", {"bootstrap": True}, "true"),
    (
        "bootstrap false",
        "<% if spec.bootstrap %>first<% else %>other<% end %>",
        {"bootstrap": False},
        "other",
    ),
    ("job name is the group", "<%= spec.job.name %>", {"group": "api"}, "api"),
    ("release", "<%= spec.release.name %>/<%= spec.release.version %>", {}, "demo/1.2"),
    ("persistent disk", "<%= spec.persistent_disk %>", {"persistent_disk": 10240}, "10240"),
    ("no persistent disk", "<%= spec.persistent_disk %>", {}, "0"),
    ("ip", "<%= spec.ip %>", {}, "10.0.0.10"),
    ("address", "<%= spec.address %>", {}, "10.0.0.10"),
    ("address given", "<%= spec.address %>", {"address": "web-0.example"}, "web-0.example"),
    ("network ip", "<%= spec.networks.default.ip %>", {}, "10.0.0.10"),
    (
        "network fields",
        "<% n = spec.networks.default %><%= n.netmask %> <%= n.gateway %> <%= n.dns.join(',') %> <%= n.default.join(',') %>",
        {},
        "255.255.255.0 10.0.0.1 10.0.0.2 dns,gateway",
    ),
    ("network by name", "<%= spec.networks['backend'].ip %>", {"networks": NETS}, "192.168.5.7"),
    (
        "network names",
        "<%= spec.networks.methods(false).sort.join(',') %>",
        {"networks": NETS},
        "backend,default",
    ),
    (
        "networks to_h",
        "<%= spec.networks.to_h.keys.sort.join(',') %>",
        {"networks": NETS},
        "backend,default",
    ),
    ("ip is the gateway network's", "<%= spec.ip %>", {"networks": NETS}, "10.0.0.10"),
    (
        "addressable wins",
        "<%= spec.ip %>",
        {
            "networks": {
                "default": manual_net("10.0.0.10"),
                "backend": manual_net("192.168.5.7", default=("addressable",)),
            }
        },
        "192.168.5.7",
    ),
    (
        "dynamic network placeholders",
        "<%= spec.networks.dyn.ip %> <%= spec.networks.dyn.gateway %>",
        {"networks": {"dyn": {"type": "dynamic", "default": ["dns", "gateway"]}}},
        "127.0.0.1 127.0.0.1",
    ),
    (
        "dns record name",
        "<%= spec.networks.default.dns_record_name %>",
        {"group": "zk_peers", "index": 2, "deployment": "prod"},
        "2.zk-peers.default.prod.bosh",
    ),
    ("deprecated name and index", "<%= name %>/<%= index %>", {"index": 1}, "web/1"),
]


@pytest.mark.parametrize(
    "template,kw,expected", [c[1:] for c in SPEC_CASES], ids=[c[0] for c in SPEC_CASES]
)
def test_spec(template, kw, expected):
    assert render_one(template, **kw) == expected


PEERS = {
    "instances": [
        {
            "name": "zk",
            "id": "u-0",
            "index": 0,
            "az": "z1",
            "address": "10.0.0.10",
            "bootstrap": True,
        },
        {
            "name": "zk",
            "id": "u-1",
            "index": 1,
            "az": "z2",
            "address": "10.0.0.11",
            "bootstrap": False,
        },
    ],
    "properties": {"port": 2181, "tls": {"on": False}},
    "instance_group": "zk_nodes",
    "default_network": "default",
    "deployment_name": "demo",
    "domain": "bosh",
}
MANUAL = {
    "instances": [{"address": "db.example.com"}],
    "properties": {},
    "address": "db.example.com",
}

# (id, template, links, expected output)
LINK_CASES = [
    (
        "instances",
        "<%= link('peers').instances.map { |i| \"#{i.index}:#{i.id}:#{i.az}:#{i.address}:#{i.bootstrap}\" }.join(' ') %>",
        {"peers": PEERS},
        "0:u-0:z1:10.0.0.10:true 1:u-1:z2:10.0.0.11:false",
    ),
    ("instance name", "<%= link('peers').instances.first.name %>", {"peers": PEERS}, "zk"),
    ("p", "<%= link('peers').p('port') %>", {"peers": PEERS}, "2181"),
    ("p nested false", "<%= link('peers').p('tls.on') %>", {"peers": PEERS}, "false"),
    ("p default", "<%= link('peers').p('missing', 'dflt') %>", {"peers": PEERS}, "dflt"),
    ("p array", "<%= link('peers').p(['missing', 'port']) %>", {"peers": PEERS}, "2181"),
    (
        "if_p",
        "<% link('peers').if_p('port') do |pt| %>port <%= pt %><% end.else do %>none<% end %>",
        {"peers": PEERS},
        "port 2181",
    ),
    (
        "if_p else",
        "<% link('peers').if_p('nope') do |x| %>x<% end.else do %>none<% end %>",
        {"peers": PEERS},
        "none",
    ),
    (
        "address",
        "<%= link('peers').address %>",
        {"peers": PEERS},
        "q-s0.zk-nodes.default.demo.bosh",
    ),
    (
        "address with criteria",
        "<%= link('peers').address(azs: ['z1'], status: 'healthy') %>",
        {"peers": PEERS},
        "q-a1s3.zk-nodes.default.demo.bosh",
    ),
    ("manual address", "<%= link('db').address %>", {"db": MANUAL}, "db.example.com"),
    (
        "if_link present",
        "<% if_link('peers') do |l| %><%= l.instances.size %><% end.else do %>none<% end %>",
        {"peers": PEERS},
        "2",
    ),
    (
        "if_link absent",
        "<% if_link('peers') do |l| %>yes<% end.else do %>none<% end %>",
        {},
        "none",
    ),
    (
        "else_if_link",
        "<% if_p('name') do |n| %>n<% end.else_if_link('peers') do |l| %><%= l.p('port') %><% end %>",
        {"peers": PEERS},
        "2181",
    ),
]


@pytest.mark.parametrize(
    "template,links,expected", [c[1:] for c in LINK_CASES], ids=[c[0] for c in LINK_CASES]
)
def test_links(template, links, expected):
    assert render_one(template, links=links) == expected


def test_monit_is_rendered_with_the_same_context():
    j = job(
        templates={"ctl.erb": ("bin/ctl", "port=<%= p('port') %>")},
        properties={"port": {"default": 1}},
        monit="check process web\n  with pidfile /var/vcap/sys/run/<%= spec.name %>/pid\n  group vcap\n",
    )
    inst = instance([(j, {"port": 7})])
    files = render_instances([inst])[inst.key].files["web"]
    assert (
        files["monit"]
        == "check process web\n  with pidfile /var/vcap/sys/run/web/pid\n  group vcap\n"
    )
    assert files["bin/ctl"] == "port=7"


def test_a_template_that_mutates_its_context_does_not_change_the_next_one():
    j = job(
        templates={
            "a.erb": ("a", "<% p('users') << 'intruder' %><% spec.name << '-changed' %>a"),
            "b.erb": ("b", "<%= p('users').inspect %> <%= spec.name %>"),
        },
        properties={"users": {"default": []}},
    )
    inst = instance([(j, {})])
    assert render_instances([inst])[inst.key].files["web"]["b"] == "[] web"


def test_each_job_sees_its_own_properties_and_links():
    a = job(
        "a",
        templates={
            "t": (
                "out",
                "<%= p('x', 'unset') %> <% if_link('l') do |l| %>linked<% end.else do %>alone<% end %>",
            )
        },
        properties={"x": {}},
    )
    b = job(
        "b",
        templates={
            "t": (
                "out",
                "<%= p('x', 'unset') %> <% if_link('l') do |l| %>linked<% end.else do %>alone<% end %>",
            )
        },
        properties={"x": {}},
    )
    inst = instance([(a, {"x": "for-a"}, {"l": PEERS}), (b, {})])
    files = render_instances([inst])[inst.key].files
    assert files["a"]["out"] == "for-a linked"
    assert files["b"]["out"] == "unset alone"


def test_link_without_instances_is_not_a_link():
    assert (
        render_one(
            "<% if_link('l') do |l| %>yes<% end.else do %>no<% end %>",
            links={"l": {"properties": {}}},
        )
        == "no"
    )


def test_a_template_that_mutates_link_data_does_not_change_the_next_one():
    mutate = (
        "<% l = link('peers') %><% l.instances.first.address << '-x' %>"
        "<% l.p('tls')['on'] = true %><% l.properties['port'] = 1 %>"
        "<% l.if_p('tls') { |t| t['on'] = 'yes' } %>a"
    )
    read = "<% l = link('peers') %><%= l.instances.first.address %> <%= l.p('tls.on') %> <%= l.p('port') %>"
    j = job(templates={"a.erb": ("a", mutate), "b.erb": ("b", read)})
    other = job("other", templates={"c.erb": ("c", read)})
    inst = instance([(j, {}, {"peers": PEERS}), (other, {}, {"peers": PEERS})])
    files = render_instances([inst])[inst.key].files
    assert files["web"]["b"] == "10.0.0.10 false 2181"
    assert files["other"]["c"] == "10.0.0.10 false 2181"
