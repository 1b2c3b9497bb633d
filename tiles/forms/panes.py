"""Forms of a tile's system panes: Assign AZs and Networks, Resource Config, Errands.

Their fields come from the tile's job types and errands and the Director
tile's AZs, networks and VM types; what they clean is handed to
``tiles.services`` (``set_networks_and_azs``, ``set_resource_config``,
``set_errands``), which does the real checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from django import forms

__all__ = [
    "NetworkAssignmentForm",
    "ResourceConfigForm",
    "ErrandsForm",
    "ERRAND_CHOICES",
]


def _choice_list(names: Sequence[str], blank: str | None = None) -> list[tuple[str, str]]:
    out = [("", blank)] if blank is not None else []
    return out + [(n, n) for n in names]


class NetworkAssignmentForm(forms.Form):
    """A tile's Assign AZs and Networks pane (Ops Manager's ``networks_and_azs``)."""

    singleton_availability_zone = forms.ChoiceField(label="Place singleton jobs in", required=False)
    other_availability_zones = forms.MultipleChoiceField(
        label="Balance other jobs in", required=False, widget=forms.CheckboxSelectMultiple
    )
    network = forms.ChoiceField(label="Network", required=False)

    def __init__(self, *args, azs: Sequence[str] = (), networks: Sequence[str] = (), **kw):
        super().__init__(*args, **kw)
        self.fields["singleton_availability_zone"].choices = _choice_list(azs, "— choose —")
        self.fields["other_availability_zones"].choices = _choice_list(azs)
        self.fields["network"].choices = _choice_list(networks, "— choose —")

    def clean(self):
        cd = super().clean()
        if not cd.get("singleton_availability_zone"):
            self.add_error(
                "singleton_availability_zone", "Choose the availability zone of singleton jobs."
            )
        if not cd.get("other_availability_zones"):
            self.add_error("other_availability_zones", "Choose at least one availability zone.")
        if not cd.get("network"):
            self.add_error("network", "Choose the network.")
        return cd


AUTOMATIC = ""


class ResourceConfigForm(forms.Form):
    """Resource Config: per job, instances, VM type and persistent disk type.

    Field names are ``<job>__instances``, ``<job>__instance_type`` and
    ``<job>__persistent_disk`` (size in MB); "" means Automatic.
    """

    def __init__(
        self,
        *args,
        jobs: Sequence[Mapping],
        vm_types: Sequence[Mapping],
        disk_sizes: Sequence[int],
        **kw,
    ):
        super().__init__(*args, **kw)
        self.jobs = []
        vm_choices = [(AUTOMATIC, "Automatic")] + [
            (
                v["name"],
                f"{v['name']} (cpu: {v['cpu']}, ram: {v['ram']} MB, disk: {v['ephemeral_disk']} MB)",
            )
            for v in vm_types
        ]
        for job in jobs:
            name = job["name"]
            idef = job.get("instance_definition") or {}
            c = idef.get("constraints") if isinstance(idef.get("constraints"), Mapping) else {}
            attrs = {k: c[k] for k in ("min", "max") if isinstance(c.get(k), int)}
            row = {"job": job, "fields": []}
            if idef.get("configurable", True) is not False:
                self.fields[f"{name}__instances"] = forms.IntegerField(
                    label="Instances",
                    required=False,
                    min_value=c.get("min") if isinstance(c.get("min"), int) else 0,
                    max_value=c.get("max") if isinstance(c.get("max"), int) else None,
                    help_text=f"Automatic: {idef.get('default', 0)}",
                    widget=forms.NumberInput(attrs),
                )
                row["fields"].append(f"{name}__instances")
            self.fields[f"{name}__instance_type"] = forms.ChoiceField(
                label="VM type", required=False, choices=vm_choices
            )
            row["fields"].append(f"{name}__instance_type")
            disk = next(
                (
                    r
                    for r in job.get("resource_definitions") or []
                    if r.get("name") == "persistent_disk"
                ),
                None,
            )
            has_disk = disk is not None and (disk.get("configurable") or disk.get("default"))
            if has_disk and disk.get("configurable", False):
                self.fields[f"{name}__persistent_disk"] = forms.ChoiceField(
                    label="Persistent disk type",
                    required=False,
                    choices=[(AUTOMATIC, f"Automatic: {disk.get('default', 0)} MB")]
                    + [(str(s), f"{s // 1024} GB" if s >= 1024 else f"{s} MB") for s in disk_sizes],
                )
                row["fields"].append(f"{name}__persistent_disk")
            row["disk"] = f"{disk.get('default')} MB" if has_disk else "None"
            self.jobs.append(row)

    def rows(self):
        for row in self.jobs:
            yield row["job"], row["disk"], [self[f] for f in row["fields"]]

    def job_values(self) -> dict[str, dict]:
        """``{job: {"instances", "instance_type", "persistent_disk_mb"}}`` (None = Automatic)."""
        out = {}
        for row in self.jobs:
            name = row["job"]["name"]
            cd = self.cleaned_data
            disk = cd.get(f"{name}__persistent_disk")
            out[name] = {
                "instances": cd.get(f"{name}__instances"),
                "instance_type": cd.get(f"{name}__instance_type") or None,
                "persistent_disk_mb": int(disk) if disk else None,
            }
        return out

    def add_job_errors(self, errors: Mapping[str, Any]) -> None:
        """Errors keyed ``<job>/instances``, ``<job>/instance_type.id``,
        ``<job>/persistent_disk.size_mb`` go on that job's field; others on the
        form, naming the job."""
        names = {"persistent_disk_mb": "persistent_disk", "size_mb": "persistent_disk"}
        labels = {
            r["job"]["name"]: r["job"].get("resource_label") or r["job"]["name"] for r in self.jobs
        }
        for key, msgs in errors.items():
            msgs = msgs if isinstance(msgs, list | tuple) else [msgs]
            parts = [
                p for p in re.split(r"[/.]", key) if p and p not in ("jobs", "resource_config")
            ]
            target = None
            job = parts[0] if parts else ""
            for part in parts[1:]:
                candidate = f"{job}__{names.get(part, part)}"
                if candidate in self.fields:
                    target = candidate
                    break
            for m in msgs:
                self.add_error(target, m if target else f"{labels.get(job, key)}: {m}")


ERRAND_CHOICES = [
    ("default", "Default"),
    ("true", "On"),
    ("false", "Off"),
    ("when-changed", "When changed"),
]


class ErrandsForm(forms.Form):
    """The Errands pane: per errand, on/off/when-changed or the tile default."""

    def __init__(self, *args, errands: Sequence[Mapping], phase: str = "post_deploy", **kw):
        super().__init__(*args, **kw)
        self.errand_names = []
        for e in errands:
            name = e["name"]
            self.fields[name] = forms.ChoiceField(
                label=e.get("label") or name,
                help_text=e.get("description") or "",
                choices=ERRAND_CHOICES,
                required=False,
            )
            self.errand_names.append(name)

    def errand_values(self) -> dict[str, bool | str | None]:
        out = {}
        for name in self.errand_names:
            v = self.cleaned_data.get(name) or "default"
            out[name] = {"default": None, "true": True, "false": False}.get(v, v)
        return out

    @staticmethod
    def initial_for(value: Any) -> str:
        if value is None:
            return "default"
        if value is True:
            return "true"
        if value is False:
            return "false"
        return str(value)
