"""Review Pending Changes and Apply Changes.

Per product: the action, its warnings and notes, the manifest and runtime
config diffs, the director's plan and what can be foreseen (VM sizes, powered
off VMs, what a deletion loses); Apply Changes starts the installation and
sends to its page (``installations``).

While an Apply Changes runs, the director's plan is not asked for: it would
be computed against deployments the installation is still changing (an
instance it is updating reads as "recreate: previous deploy did not
finish"). The page says which installation runs, links to it, and that the
review is right once it finishes; the diffs stay, labelled as compared with
what was deployed before it started.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from opsconsole.auth import can_write
from opsconsole.errors import Conflict, ServiceError
from tiles import services
from tiles.services import foresight

from .common import _error_lines, writer_required
from .installations import _refused_while_running


@require_http_methods(["GET", "POST"])
@writer_required
def pending_changes(request):
    if request.method == "POST":
        deploy = request.POST.getlist("deploy_products")
        errands: dict[str, dict] = {}
        for key, value in request.POST.items():
            if key.startswith("errand:") and value in ("true", "false", "default"):
                _, guid, name = key.split(":", 2)
                if value != "default":
                    errands.setdefault(guid, {}).setdefault("run_post_deploy", {})[name] = (
                        value == "true"
                    )
        try:
            installation = services.apply_changes(
                user=request.user.get_username(),
                deploy_products=deploy or "none",
                errands=errands,
                ignore_warnings=bool(request.POST.get("ignore_warnings")),
            )
        except Conflict:
            _refused_while_running(request)
            return redirect("pending-changes")
        except ServiceError as exc:
            for line in _error_lines(exc.errors):
                messages.error(request, line)
            return redirect("pending-changes")
        return redirect("installation", installation_id=installation.id)
    rendered: dict[str, dict] = {}  # each staged manifest, rendered once for the whole page
    running = services.running_installation()
    changes = services.pending_changes(with_plan=running is None, rendered=rendered)[
        "product_changes"
    ]
    for change in changes:
        # A config someone uploaded that this apply replaces: its diff says so in its title.
        replaced = {r["type"]: r for r in change.get("config_replacements") or []}
        change["diffs"] = [
            (
                f"{title} (replaces the {kind}-config {replaced[kind]['uploaded_by']} uploaded)"
                if kind in replaced
                else title,
                _diff_lines(
                    replaced[kind]["diff"] if kind in replaced else (change.get(key) or "")
                ),
            )
            for key, title, kind in (
                ("manifest_diff", "Manifest", ""),
                ("runtime_configs_diff", "Runtime configs", ""),
                ("cloud_config_diff", "Cloud config", "cloud"),
                ("cpi_config_diff", "CPI config", "cpi"),
            )
            if key in change
        ]
        change["plan_rows"] = _plan_rows(change.get("plan"))
    foreseen = _foresee(changes, rendered, applying=running is not None)
    deletions = [c for c in changes if c["action"] == "delete"]
    return render(
        request,
        "tiles/pending_changes.html",
        {
            "changes": changes,
            "summary": [_summary_row(c) for c in changes],
            "capacity_error": foreseen["capacity_error"],
            "vcenter_error": foreseen["vcenter_error"],
            "confirm": _deletion_confirm(deletions),
            "can_write": can_write(request.user),
            "running": running,
            "plan_actions": PLAN_ACTIONS,
        },
    )


#: The actions whose product has a director's plan (``pending.product_change``).
PLAN_ACTIONS = ("install", "update")
#: The instance changes the summary counts, in BOSH's words.
SUMMARY_CHANGES = ("create", "update", "recreate", "delete")


def _summary_row(change: Mapping) -> dict:
    """One product's line of the summary at the top: its action and instance counts."""
    counts = dict.fromkeys(SUMMARY_CHANGES, 0)
    if change["action"] == "delete":
        counts["delete"] = len(change["losses"].instances)
    else:
        for row in change["plan_rows"]["rows"]:
            if row["change"] in counts:
                counts[row["change"]] += 1
    planned = bool(change["plan_rows"]["rows"]) or change["action"] == "delete"
    return {
        "guid": change["guid"],
        "label": change.get("label") or change["product_name"],
        "action": change["action"],
        "counts": [counts[k] for k in SUMMARY_CHANGES],
        "planned": planned,
        "director": change["product_name"] == "p-bosh",
        "warnings": len(change.get("warnings") or []) + len(change.get("foreseen") or []),
    }


def _deletion_confirm(deletions: list[Mapping]) -> str:
    """The question asked before an Apply Changes that deletes products ('' when none does)."""
    if not deletions:
        return ""
    parts = []
    for c in deletions:
        losses = c["losses"]
        parts.append(
            f"{c.get('label') or c['product_name']} ({len(losses.instances)} instance"
            f"{'s' if len(losses.instances) != 1 else ''}, {len(losses.disks)} persistent disk"
            f"{'s' if len(losses.disks) != 1 else ''})"
        )
    return (
        f"Apply Changes deletes {', '.join(parts)}. Their VMs and persistent disks are "
        "destroyed and the data on those disks is lost. Continue?"
    )


def _foresee(changes: list[dict], rendered: Mapping[str, dict], applying: bool = False) -> dict:
    """Add ``losses`` (deletes) and ``foreseen`` warnings (VM sizes, powered-off VMs) to each.

    ``rendered``: the staged manifests ``pending_changes`` rendered (guid -> manifest).
    ``applying``: an Apply Changes runs, so power states are not read: a VM it is
    stopping or recreating right now would read as a warning about the next one.
    """
    staged = {sp.guid: sp for sp in services.list_staged_products()}
    deleting = [c["guid"] for c in changes if c["action"] == "delete"]
    losses = foresight.deletion_losses(deleting)
    updating = [
        c["guid"]
        for c in changes
        if c["action"] == "update" and c["guid"] in staged and not applying
    ]
    powered_off, vcenter_error = foresight.powered_off_vms(updating)
    manifests = {
        c["guid"]: rendered[c["guid"]]
        for c in changes
        if c["guid"] in staged
        and c["guid"] in rendered  # a manifest that did not render: its warnings say so
        and c["action"] in ("install", "update")
        and not c.get("render_errors")
    }
    capacity = foresight.host_capacity() if manifests else None
    for c in changes:
        c["losses"] = losses.get(c["guid"], foresight.Losses())
        c["foreseen"] = [
            *(
                foresight.oversized_vm_types(manifests[c["guid"]], capacity)
                if capacity and c["guid"] in manifests
                else []
            ),
            *powered_off.get(c["guid"], []),
        ]
        if capacity and c["product_name"] == "p-bosh":  # products to deploy may compile
            try:
                cloud = services.render_cloud_config()
            except ServiceError:
                cloud = {}  # an incomplete tile: its warnings say so
            c["foreseen"] += foresight.oversized_compilation(cloud, capacity)
    return {
        "capacity_error": capacity.error if capacity else "",
        "vcenter_error": vcenter_error if updating else "",
    }


def _diff_lines(diff: str) -> list[tuple[str, str]]:
    """A unified diff as ``(css class, line)``: ``add``, ``del``, ``hunk`` or ``""``."""
    out = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            cls = "hunk"
        elif line.startswith("+"):
            cls = "add"
        elif line.startswith("-"):
            cls = "del"
        elif line.startswith("@@"):
            cls = "hunk"
        else:
            cls = ""
        out.append((cls, line))
    return out


#: The director's plan error before any cloud-config exists (its CLI advice is not shown here).
NO_CLOUD_CONFIG = "no cloud-config uploaded"
FIRST_INSTALL_NOTE = (
    "The director has no cloud-config yet, so its plan for this product cannot be shown. "
    "This Apply Changes stores the BOSH Director tile's cloud-config first, then deploys "
    "this product; after that, this page shows the plan instance by instance."
)


#: The director's CLI advice, and what to do in the console instead.
GUI_ADVICE = (
    (
        "(upload it with upload-stemcell)",
        "(import it on the Stemcells page: Apply Changes uploads it from the Stemcell Library)",
    ),
    (
        "(upload it with upload-release)",
        "(import the product file that carries it again: its releases are uploaded with it)",
    ),
)


def _gui_words(line: str) -> str:
    for cli, gui in GUI_ADVICE:
        line = line.replace(cli, gui)
    return line


def _plan_rows(plan: Any) -> dict:
    """The director's plan (``director.execution.preview``) as table rows.

    ``{"rows": [{"group", "name", "az", "change", "reasons"}], "summary",
    "errors", "notes", "warnings"}``; instances without a change are left out.
    The director's advice to upload a cloud-config with the CLI becomes a
    note for the GUI: the first Apply Changes uploads the tile's.
    """
    if not isinstance(plan, Mapping):
        return {"rows": [], "errors": [], "notes": [], "summary": {}, "warnings": []}
    errors, notes = [], []
    for line in _error_lines(plan.get("errors") or {}):
        if NO_CLOUD_CONFIG in line:
            notes.append(FIRST_INSTALL_NOTE)  # not an error: this apply uploads it first
        else:
            errors.append(_gui_words(line))
    if plan.get("error"):
        errors.append(str(plan["error"]))
    rows = []
    groups = [*(plan.get("instance_groups") or []), *(plan.get("obsolete_instance_groups") or [])]
    for g in groups:
        for inst in [*(g.get("instances") or []), *(g.get("obsolete") or [])]:
            if inst.get("change") in (None, "none") or inst.get("ignored"):
                continue
            rows.append(
                {
                    "group": g.get("name"),
                    "name": inst.get("label") or inst.get("name"),
                    "az": inst.get("az") or "",
                    "change": inst.get("change"),
                    "reasons": "; ".join(map(str, inst.get("reasons") or [])),
                }
            )
    return {
        "rows": rows,
        "errors": errors,
        "notes": notes,
        "summary": plan.get("summary") or {},
        "warnings": list(plan.get("warnings") or []),
    }
