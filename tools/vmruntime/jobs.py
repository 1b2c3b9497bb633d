"""The VM agent's jobs: ``prepare``, ``apply``, ``start``, ``stop``, ``run_script``,
``run_errand`` (bosh-agent.md §2.2, §2.3, §2.5, §2.7).

``apply`` installs the spec's packages and its rendered jobs under the VM's
``/var/vcap`` and reloads monit; ``start`` hands the jobs' monit files to
monit in BOSH's order; hook scripts and errands run in the VM's sandbox.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

from .actions import ActionError, VmWork
from .layout import write_json
from .monit import MonitFileError


class JobMethods(VmWork):
    def _install_jobs(self, spec: dict) -> dict[str, Path]:
        archive_ref = spec.get("rendered_templates_archive")
        templates = (spec.get("job") or {}).get("templates") or []
        if not archive_ref or not templates:
            return {}
        blob = self._fetch(archive_ref, "rendered templates archive")
        bundles = {}
        try:
            for tmpl in templates:
                name = tmpl.get("name")
                if not name or "/" in name or name.startswith("."):
                    raise ActionError(f"job name {name!r} is not valid")
                bundle = self.disk.job_bundle(name, str(tmpl.get("version")), archive_ref["sha1"])
                self.disk.unpack(blob, bundle, member_prefix=name)
                self.disk.fix_job_modes(bundle)
                bundles[name] = bundle
        finally:
            blob.unlink(missing_ok=True)
        return bundles

    def _check_networks(self, spec: dict) -> None:
        nets = self.settings.get("networks") or {}
        for name in spec.get("networks") or {}:
            if name not in nets:
                raise ActionError(f"Network '{name}' is not found in settings")

    async def m_prepare(self, task, spec):
        if not isinstance(spec, dict):
            raise ActionError("the apply spec must be a map")
        await asyncio.to_thread(self._install_packages, spec.get("packages") or {})
        await asyncio.to_thread(self._install_jobs, spec)
        return "prepared"

    async def m_apply(self, task, spec):
        if not isinstance(spec, dict):
            raise ActionError("the apply spec must be a map")
        self._check_networks(spec)
        if not spec.get("configuration_hash") and not spec.get("rendered_templates_archive"):
            write_json(self.disk.bosh / "spec.json", spec)
            self.disk.write_instance(spec)
            return "applied"
        await asyncio.to_thread(self._full_apply, spec)
        self.monit.reload()
        return "applied"

    def _full_apply(self, spec: dict) -> None:
        for f in self.disk.monit.joinpath("job").glob("*"):
            f.unlink()
        packages = self._install_packages(spec.get("packages") or {})
        jobs = self._install_jobs(spec)
        for name, bundle in jobs.items():
            self.disk.enable_job(name, bundle, packages)
        for name, bundle in packages.items():
            self.disk.enable_package(name, bundle)
        self.disk.keep_only(set(jobs), set(jobs.values()), set(packages), set(packages.values()))
        write_json(self.disk.bosh / "spec.json", spec)
        self.disk.write_instance(spec)

    async def m_start(self):
        jobs = [j for j in self._job_names() if (self.disk.jobs / j).is_dir()]
        job_dir = self.disk.monit / "job"
        for f in job_dir.glob("*"):
            f.unlink()
        for i, job in enumerate(reversed(jobs)):
            base = self.disk.jobs / job
            if (base / "monit").is_file():
                shutil.copyfile(base / "monit", job_dir / f"{i:04d}_{job}.monitrc")
            for extra in sorted(base.glob("*.monit")):
                shutil.copyfile(extra, job_dir / f"{i:04d}_{job}_{extra.stem}.monitrc")
        try:
            self.monit.reload()
        except MonitFileError as exc:
            raise ActionError(str(exc)) from None
        (self.disk.monit / "stopped").unlink(missing_ok=True)
        for svc in self.monit.vcap_services():
            svc.monitor = 2  # starting, until its pid is seen
        self._spawn(self.monit.start_all())
        return "started"

    async def m_stop(self, task):
        await self.monit.stop_all()
        (self.disk.monit / "stopped").write_text("")
        return "stopped"

    async def m_run_script(self, task, name, options=None):
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ActionError(f"script name {name!r} is not valid")
        env = {str(k): str(v) for k, v in ((options or {}).get("env") or {}).items()}
        jobs = [j for j in self._job_names() if (self.disk.jobs / j / "bin" / name).is_file()]
        if not jobs:
            return {}

        def run_one(job):
            logdir = self.disk.data / "sys" / "log" / job
            logdir.mkdir(parents=True, exist_ok=True)
            with (
                open(logdir / f"{name}.stdout.log", "ab") as out,
                open(logdir / f"{name}.stderr.log", "ab") as err,
            ):
                rc, _, _ = self._run(
                    task,
                    ["nice", "-n", "5", f"/var/vcap/jobs/{job}/bin/{name}"],
                    env=env,
                    stdout=out,
                    stderr=err,
                )
            return rc

        codes = await asyncio.gather(*(asyncio.to_thread(run_one, j) for j in jobs))
        failed = [j for j, rc in zip(jobs, codes, strict=True) if rc != 0]
        if failed:
            ok = [j for j in jobs if j not in failed]
            raise ActionError(
                f"{len(failed)} of {len(jobs)} {name} scripts failed. "
                f"Failed Jobs: {', '.join(failed)}. Successful Jobs: {', '.join(ok)}."
            )
        return {}

    async def m_run_errand(self, task, name=None, *rest):
        job = name or (self.spec.get("job") or {}).get("template")
        script = self.disk.jobs / str(job) / "bin" / "run" if job else None
        if not job or "/" in str(job) or not script.is_file():
            raise ActionError(f"Could not find errand {job}")
        rc, out, err = await asyncio.to_thread(
            self._run, task, [f"/var/vcap/jobs/{job}/bin/run"], cwd=f"/var/vcap/jobs/{job}"
        )
        return {
            "stdout": out.decode(errors="replace"),
            "stderr": err.decode(errors="replace"),
            "exit_code": rc,
        }
