"""What an operator reads when a template fails, and the renderer's bounds."""

from __future__ import annotations

import subprocess

import pytest

from director.rendering import RenderError, render_instances
from tests.director.rendering.helpers import instance, job, needs_ruby

pytestmark = needs_ruby


def failing(erb, properties=None, spec_properties=None, **kw):
    j = job(
        "api",
        templates={"ok.erb": ("ok", "fine"), "config.erb": ("config/api.yml", erb)},
        properties=spec_properties or {"port": {"default": 1}, "password": {}},
    )
    inst = instance([(j, properties or {})], group="api-group", **kw)
    with pytest.raises(RenderError) as caught:
        render_instances([inst])
    return caught.value


def test_ruby_error_names_job_template_and_line():
    err = failing("port: <%= p('port') %>\nhost: <%= foo %>\n")
    assert str(err) == (
        "- Unable to render jobs for instance group 'api-group'. Errors are:\n"
        "  - Unable to render templates for job 'api'. Errors are:\n"
        "    - Error filling in template 'config.erb' (line 2: undefined local variable or method 'foo')"
    )
    [e] = err.errors
    assert (e.group, e.job, e.template, e.line) == ("api-group", "api", "config.erb", 2)


def test_missing_property_without_default_is_boshs_error():
    err = failing("a\nb\nsecret: <%= p('password') %>\n")
    assert (
        "Error filling in template 'config.erb' (line 3: Can't find property '[\"password\"]')"
        in str(err)
    )


def test_missing_array_of_properties():
    err = failing("<%= p(['password', 'other']) %>")
    assert 'Can\'t find property \'["password", "other"]\'' in str(err)


def test_missing_link():
    err = failing("\n<%= link('db').address %>")
    assert "Error filling in template 'config.erb' (line 2: Can't find link 'db')" in str(err)


def test_syntax_error_names_the_line():
    err = failing("a\n<% if %>\n")
    [e] = err.errors
    assert e.template == "config.erb" and e.line == 2
    assert "syntax error" in e.message


def test_raise_in_a_template_is_reported_with_its_message():
    err = failing("<% raise 'User must be configured with a name' %>")
    assert "(line 1: User must be configured with a name)" in str(err)


def test_a_property_value_does_not_leak_into_the_error():
    err = failing("<%= p('password').no_such_method %>", {"password": "hunter2-secret"})
    assert "hunter2" not in str(err)
    assert "undefined method 'no_such_method' for an instance of String" in str(err)


def test_every_failing_template_of_every_job_is_reported():
    a = job("a", templates={"x.erb": ("x", "<%= p('nope') %>"), "y.erb": ("y", "\n<%= boom %>")})
    b = job("b", templates={"z.erb": ("z", "<%= link('l') %>")})
    inst = instance([(a, {}), (b, {})], group="g")
    with pytest.raises(RenderError) as caught:
        render_instances([inst])
    assert str(caught.value) == (
        "- Unable to render jobs for instance group 'g'. Errors are:\n"
        "  - Unable to render templates for job 'a'. Errors are:\n"
        "    - Error filling in template 'x.erb' (line 1: Can't find property '[\"nope\"]')\n"
        "    - Error filling in template 'y.erb' (line 2: undefined local variable or method 'boom')\n"
        "  - Unable to render templates for job 'b'. Errors are:\n"
        "    - Error filling in template 'z.erb' (line 1: Can't find link 'l')"
    )


def test_monit_errors_are_reported_as_the_monit_template():
    j = job("a", monit="check process <%= p('absent') %>")
    with pytest.raises(
        RenderError, match=r"Error filling in template 'monit' \(line 1: Can't find property"
    ):
        render_instances([instance([(j, {})])])


def test_a_property_that_is_not_the_hash_its_name_needs():
    j = job("a", templates={"t": ("t", "<%= p('db.host') %>")}, properties={"db.host": {}})
    with pytest.raises(RenderError) as caught:
        render_instances([instance([(j, {"db": "postgres://x"})], group="g")])
    assert "Property 'db.host' expects a hash, but received 'String'" in str(caught.value)


def test_one_ruby_process_renders_the_whole_deployment(monkeypatch):
    launches = []
    real_popen = subprocess.Popen

    def counting_popen(args, *a, **kw):
        launches.append(args)
        return real_popen(args, *a, **kw)

    monkeypatch.setattr(subprocess, "Popen", counting_popen)
    web = job("web", templates={"t": ("t", "<%= spec.name %>/<%= spec.index %>")})
    worker = job("worker", templates={"t": ("t", "<%= spec.name %>/<%= spec.index %>")})
    instances = [instance([(web, {})], group="web", id=f"w{i}", index=i) for i in range(4)] + [
        instance([(worker, {})], group="worker", id=f"k{i}", index=i) for i in range(3)
    ]
    out = render_instances(instances)
    assert len(launches) == 1 and launches[0][0].endswith("ruby")
    assert [out[i.key].files[i.jobs[0].job.name]["t"] for i in instances] == [
        "web/0",
        "web/1",
        "web/2",
        "web/3",
        "worker/0",
        "worker/1",
        "worker/2",
    ]


def test_a_template_that_never_ends_is_stopped_at_the_deadline():
    j = job("a", templates={"t": ("t", "<% loop { } %>")})
    with pytest.raises(RenderError, match=r"rendering the job templates took longer than 2 s"):
        render_instances([instance([(j, {})])], timeout=2)


def test_oversized_output_is_refused():
    j = job("a", templates={"t": ("t", "<%= 'x' * 50_000 %>")})
    with pytest.raises(RenderError, match=r"exceed 10000 bytes \(at template 't' of job 'a'\)"):
        render_instances([instance([(j, {})])], max_output_bytes=10_000)


def test_a_template_cannot_write_files(tmp_path):
    target = tmp_path / "planted"
    j = job("a", templates={"t": ("t", f"<% File.write('{target}', 'owned') %>done")})
    with pytest.raises(RenderError, match=r"line 1: File too large"):
        render_instances([instance([(j, {})])])
    assert not target.exists() or target.read_bytes() == b""


def test_missing_ruby_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("director.rendering.erb.shutil.which", lambda name: None)
    with pytest.raises(RenderError, match="'ruby' is not installed"):
        render_instances([instance([(job(), {})])])
