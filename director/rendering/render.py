"""Render every instance's jobs: files, hashes and the templates archive.

``render_instances`` binds each job's properties, builds each instance's
template spec (``director.rendering.model``), sends the whole deployment to
one ``ruby`` process (``director.rendering.erb``) and returns, per instance,
a :class:`RenderedInstance`:

* ``files``: ``{job: {"monit": ..., <dest>: <content>, ".bosh/links.json": ...}}``;
* ``template_hashes``: ``{job: sha1}``, BOSH's ``RenderedJobTemplate#template_hash``:
  one SHA-1 fed the rendered ``monit``, then every rendered file's contents
  in the order of their source paths (``.bosh/links.json`` included, as BOSH
  adds it to the job's files);
* ``configuration_hash``: BOSH's ``RenderedJobInstance#configuration_hash``:
  one SHA-1 fed, for each job in name order, the job's ``monit``, its name,
  then each file's contents followed by its destination, in source-path
  order. It changes exactly when a rendered byte, a destination or the set
  of jobs changes, which is what the planner's ``configuration`` change keys on;
* ``archive()``: the rendered templates archive BOSH keeps in the blobstore
  (``rendered_templates_archive``): a gzipped tar of ``./<job>/monit``,
  ``./<job>/<dest>`` and ``./<job>/.bosh/links.json``, files 0644 and
  directories 0755, built deterministically (sorted, fixed times and owner)
  so equal renders give equal bytes and equal ``sha1``.

A template that fails does not stop the others: every failure is collected
and raised together as :class:`RenderError`, worded as BOSH words it::

    - Unable to render jobs for instance group 'zookeeper'. Errors are:
      - Unable to render templates for job 'zookeeper'. Errors are:
        - Error filling in template 'zoo.cfg.erb' (line 3: Can't find link 'peers')
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import erb
from .model import InstanceToRender, PropertyTypeError, bind_properties, template_spec


@dataclass(frozen=True)
class TemplateError:
    """One template that failed on one instance."""

    instance: str
    group: str
    job: str
    template: str | None
    line: int | None
    message: str

    def __str__(self) -> str:
        if self.template is None:
            return self.message
        line = self.line if self.line is not None else "(unknown)"
        return f"Error filling in template '{self.template}' (line {line}: {self.message})"


class RenderError(Exception):
    """Templates that failed (``errors``), or a renderer that could not run."""

    def __init__(self, errors: Iterable[TemplateError] = (), message: str | None = None):
        self.errors: list[TemplateError] = list(errors)
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.message:
            return self.message
        blocks: list[str] = []
        seen_groups: dict[str, str] = {}
        for err in self.errors:
            # Instances of one group fail alike: report the first failing one, as BOSH does.
            seen_groups.setdefault(err.group, err.instance)
        for group, instance in seen_groups.items():
            lines = [f"- Unable to render jobs for instance group '{group}'. Errors are:"]
            jobs: dict[str, list[TemplateError]] = {}
            for err in self.errors:
                if err.instance == instance:
                    jobs.setdefault(err.job, []).append(err)
            for job, errs in jobs.items():
                lines.append(f"  - Unable to render templates for job '{job}'. Errors are:")
                lines.extend(f"    - {e}" for e in errs)
            blocks.append("\n".join(lines))
        return "\n".join(blocks)


@dataclass(frozen=True)
class RenderedFile:
    src: str
    dest: str
    content: str


@dataclass(frozen=True)
class RenderedJob:
    """One job's rendered ``monit`` and files (``.bosh/links.json`` last)."""

    name: str
    monit: str
    files: tuple[RenderedFile, ...]

    @property
    def template_hash(self) -> str:
        digest = hashlib.sha1(self.monit.encode())
        for f in sorted(self.files, key=lambda f: f.src):
            digest.update(f.content.encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class RenderedInstance:
    """An instance's rendered jobs, in manifest order."""

    key: str
    jobs: tuple[RenderedJob, ...] = field(default_factory=tuple)

    @property
    def files(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for job in self.jobs:
            files = {"monit": job.monit}
            files.update({f.dest: f.content for f in job.files})
            out[job.name] = files
        return out

    @property
    def template_hashes(self) -> dict[str, str]:
        return {job.name: job.template_hash for job in self.jobs}

    @property
    def configuration_hash(self) -> str:
        digest = hashlib.sha1()
        for job in sorted(self.jobs, key=lambda j: j.name):
            bound = job.monit + job.name
            for f in sorted(job.files, key=lambda f: f.src):
                bound += f.content + f.dest
            digest.update(bound.encode())
        return digest.hexdigest()

    def archive(self) -> bytes:
        """The rendered templates archive (tgz, BOSH's ``./<job>/...`` layout)."""
        return build_archive(self.files)


def build_archive(files_by_job: Mapping[str, Mapping[str, str]]) -> bytes:
    """A deterministic tgz of ``./<job>/<path>`` for ``{job: {path: content}}``."""
    entries: dict[str, bytes | None] = {".": None}
    for job, files in files_by_job.items():
        entries[f"./{job}"] = None
        for path, content in files.items():
            parts = path.split("/")
            for i in range(1, len(parts)):
                entries[f"./{job}/" + "/".join(parts[:i])] = None
            entries[f"./{job}/{path}"] = content.encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(entries):
            data = entries[name]
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = 0o644
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def _links_json(entries: Iterable[Mapping[str, Any]]) -> str:
    rows = [
        {"name": e.get("name"), "type": e.get("type"), "group": str(e.get("group") or "")}
        for e in entries
    ]
    return json.dumps(sorted(rows, key=lambda r: r["group"]), indent=2) + "\n"


def build_payload(
    instances: Iterable[InstanceToRender], az_ids: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], list[TemplateError]]:
    """The renderer's input for ``instances``, and the errors found before any
    ERB runs (a property that is not the hash its dotted name needs)."""
    templates: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    errors: list[TemplateError] = []
    # Every instance of a group has the same properties and links (each link
    # listing all of its provider's instances): send each distinct value once.
    shared: dict[str, Any] = {}
    refs: dict[str, str] = {}

    def share(value: Any) -> str:
        text = json.dumps(value, sort_keys=True)
        if text not in refs:
            refs[text] = str(len(refs))
            shared[refs[text]] = value
        return refs[text]

    for inst in instances:
        spec = template_spec(inst)
        jobs = []
        for ij in inst.jobs:
            job = ij.job
            if job.key not in templates:
                declared = (job.spec.get("templates") or {}) if job.spec else {}
                files = []
                for src, dest in declared.items():
                    if src not in job.sources:
                        errors.append(
                            TemplateError(
                                inst.key,
                                inst.group,
                                job.name,
                                src,
                                None,
                                "the template source is not in the job",
                            )
                        )
                        continue
                    files.append({"src": src, "dest": str(dest), "erb": job.sources[src]})
                templates[job.key] = {"monit": job.monit or "", "files": files}
            try:
                properties = bind_properties((job.spec or {}).get("properties"), ij.properties)
            except PropertyTypeError as exc:
                errors.append(TemplateError(inst.key, inst.group, job.name, None, None, str(exc)))
                continue
            jobs.append(
                {
                    "name": job.name,
                    "templates": job.key,
                    "release": {"name": job.release, "version": job.release_version},
                    "properties": share(properties),
                    "links": share({k: dict(v) for k, v in (ij.links or {}).items()}),
                }
            )
        rows.append({"key": inst.key, "spec": spec, "jobs": jobs})
    ids = dict(az_ids or {})
    if not ids:
        # BOSH numbers AZs as it first records them; here in order of appearance.
        for inst in rows:
            az = inst["spec"].get("az")
            if az and az not in ids:
                ids[az] = len(ids) + 1
    payload = {
        "dns": {"az_ids": {k: str(v) for k, v in ids.items()}},
        "templates": templates,
        "shared": shared,
        "instances": rows,
    }
    return payload, errors


def render_instances(
    instances: Iterable[InstanceToRender],
    *,
    az_ids: Mapping[str, Any] | None = None,
    timeout: float = erb.DEFAULT_TIMEOUT,
    max_output_bytes: int = erb.DEFAULT_MAX_OUTPUT_BYTES,
) -> dict[str, RenderedInstance]:
    """Render every job template of ``instances`` in one ``ruby`` process.

    Returns ``{instance key ("<group>/<id>"): RenderedInstance}``; raises
    :class:`RenderError` naming every failing job, template and line, or the
    reason the renderer could not run (no ruby, timeout, oversized output).
    ``az_ids`` numbers AZs for ``link(...).address(azs: [...])`` queries.
    """
    instances = list(instances)
    payload, errors = build_payload(instances, az_ids)
    if errors:
        raise RenderError(errors)
    try:
        answer = erb.run_renderer(payload, timeout=timeout, max_output_bytes=max_output_bytes)
    except erb.RendererError as exc:
        raise RenderError(message=str(exc)) from exc

    rendered: dict[str, RenderedInstance] = {}
    results = answer.get("instances") or {}
    for inst in instances:
        result = results.get(inst.key) or {}
        for e in result.get("errors") or []:
            errors.append(
                TemplateError(
                    inst.key,
                    inst.group,
                    str(e.get("job")),
                    str(e.get("template")),
                    e.get("line"),
                    str(e.get("message") or "").strip(),
                )
            )
        jobs = []
        for ij in inst.jobs:
            out = (result.get("jobs") or {}).get(ij.job.name) or {}
            files = tuple(
                RenderedFile(f["src"], f["dest"], f.get("content") or "")
                for f in out.get("files") or []
            ) + (
                RenderedFile(
                    ".bosh/links.json", ".bosh/links.json", _links_json(ij.links_provided)
                ),
            )
            jobs.append(RenderedJob(ij.job.name, out.get("monit") or "", files))
        rendered[inst.key] = RenderedInstance(inst.key, tuple(jobs))
    if errors:
        raise RenderError(errors)
    return rendered
