"""Deployed products: what the last successful Apply Changes left running.

The deployed manifest and configuration are a snapshot taken when the
deploy succeeded (``_mark_deployed``); credentials are read from that
snapshot, masked unless revealed; instance status comes from the director.
"""

from __future__ import annotations

import yaml
from django.utils import timezone

from director.events import record_event
from director.services import deployments as director_deployments
from director.services.vms import agent_view, heartbeats_of
from opsconsole import __version__
from opsconsole.errors import NotFound
from tiles import properties as props
from tiles.director_tile import get_director
from tiles.models import DIRECTOR_PRODUCT_NAME, Product, StagedProduct
from tiles.template import ProductTemplate

from .diffs import redact, secret_strings
from .properties import _mask


def list_deployed_products() -> list[dict]:
    """``[{"installation_name", "guid", "type", "product_version", "label"}]``, the director first."""
    d = get_director()
    out = []
    if d.deployed_at:
        out.append(
            {
                "installation_name": d.guid,
                "guid": d.guid,
                "type": DIRECTOR_PRODUCT_NAME,
                "product_version": __version__,
                "label": "BOSH Director",
            }
        )
    for sp in StagedProduct.objects.select_related("deployed_product").exclude(deployed_version=""):
        out.append(
            {
                "installation_name": sp.guid,
                "guid": sp.guid,
                "type": sp.deployed_product.name
                if sp.deployed_product
                else sp.guid.rsplit("-", 1)[0],
                "product_version": sp.deployed_version,
                "label": sp.deployed_product.label if sp.deployed_product else "",
            }
        )
    return out


def _deployed(guid: str) -> StagedProduct:
    sp = StagedProduct.objects.select_related("deployed_product").filter(guid=guid).first()
    if sp is None or not sp.is_deployed:
        raise NotFound({"guid": [f"no deployed product with guid '{guid}'"]})
    return sp


def deployed_manifest(guid: str, reveal_secrets: bool = False) -> dict:
    """The manifest last deployed; secrets as ``((redacted))`` unless revealed."""
    sp = _deployed(guid)
    manifest = yaml.safe_load(sp.deployed_manifest) or {}
    if reveal_secrets:
        return manifest
    state = sp.deployed_state or {}
    return redact(manifest, secret_strings(state.get("secrets") or {}))


def deployed_status(guid: str) -> list[dict]:
    """``GET /deployed/products/{guid}/status``: one row per instance, from the director.

    Ops Manager's ``ProductStatus`` keys (``job-name``, ``index``,
    ``az_name``, ``ips``, ``cid``, ``load_avg``, ``cpu``, ``memory``, ``swap``,
    ``system_disk``, ``ephemeral_disk``, ``persistent_disk``: the vitals of
    the agent's last heartbeat, as strings, null before the first) plus
    ``job_state`` (the director's instance state), ``process_state`` (BOSH's
    word: running, failing, unresponsive agent...), ``processes`` and
    ``last_heartbeat`` (``director.services.vms.agent_view``). Like ``bosh
    vms``, errand instances show only while they have a VM; a service
    instance whose VM is missing shows with ``cid`` null.
    """
    sp = _deployed(guid)
    try:
        instances = director_deployments.deployment_instances(guid)
    except NotFound:
        return []
    manifest = yaml.safe_load(sp.deployed_manifest or "") or {}
    errands = {
        g.get("name")
        for g in manifest.get("instance_groups") or []
        if isinstance(g, dict) and g.get("lifecycle") == "errand"
    }
    heartbeats = heartbeats_of(i.active_vm for i in instances)
    rows = []
    for inst in instances:
        if inst.group in errands and inst.active_vm is None:
            continue
        vm = inst.active_vm
        view = agent_view(vm, heartbeats.get(vm.agent_id) if vm else None)
        vitals = view.vitals or {}
        disks = vitals.get("disk") or {}
        rows.append(
            {
                "job-name": inst.group,
                "index": inst.index,
                "id": inst.uuid,
                "az_name": inst.az,
                "ips": [ip.address for ip in inst.ip_addresses.all()],
                "cid": vm.cid if vm else None,
                "job_state": inst.state,
                "load_avg": vitals.get("load"),
                "cpu": vitals.get("cpu"),
                "memory": vitals.get("mem"),
                "swap": vitals.get("swap"),
                "system_disk": disks.get("system"),
                "ephemeral_disk": disks.get("ephemeral"),
                "persistent_disk": disks.get("persistent"),
                **{k: v for k, v in view.as_dict().items() if k != "vitals"},
            }
        )
    return rows


def _credential_refs(template: ProductTemplate) -> list[str]:
    out = []
    for pref in template.iter_property_references():
        try:
            if props.is_credential(pref.blueprint):
                out.append(pref.reference)
        except props.PropertyError:
            continue
    return out


def list_credentials(guid: str) -> list[str]:
    """References of the deployed product's credentials (``.properties.x``, ``.job.y``)."""
    sp = _deployed(guid)
    template = (sp.deployed_product or sp.product).template()
    return _credential_refs(template)


def get_credential(guid: str, ref: str, reveal: bool) -> dict:
    """``{"credential": {"type", "value"}}`` of a deployed credential; masked unless ``reveal``."""
    sp = _deployed(guid)
    template = (sp.deployed_product or sp.product).template()
    if ref not in _credential_refs(template):
        raise NotFound({"credential": [f"{ref} is not a credential of {guid}"]})
    bp = template.blueprint(ref)
    state = sp.deployed_state or {}
    value = (state.get("secrets") or {}).get(ref)
    return {
        "credential": {
            "type": bp.get("type"),
            "value": value if reveal else _mask(bp, value),
        }
    }


def reveal_credential(guid: str, ref: str, user: str) -> dict:
    """A deployed credential's value (``get_credential`` revealed), recorded as an audit event.

    Callers check the role first (``opsconsole.auth.can_see_credentials``);
    each reveal is one ``reveal credential`` event naming the reference,
    the product (its deployment) and who asked. The event holds no value.
    """
    out = get_credential(guid, ref, reveal=True)
    record_event(
        "reveal",
        "credential",
        ref,
        user=user,
        deployment=guid,
        context={"product": guid, "type": out["credential"]["type"]},
    )
    return out


def _mark_deployed(
    staged: StagedProduct,
    manifest_text: str,
    *,
    product: Product | None = None,
    state: dict | None = None,
) -> None:
    """Record what was deployed (after a successful deploy).

    ``product`` and ``state`` are what the installation's snapshot reviewed
    and deployed (default: the staged product as it is). Only the
    ``deployed_*`` columns are written, so a staged edit saved during the
    deploy stays staged (and shows as a pending change).
    """
    product = product or staged.product
    staged.deployed_product = product
    staged.deployed_version = product.version
    staged.deployed_manifest = manifest_text
    staged.deployed_state = state or {
        "values": staged.values,
        "secrets": staged.secrets,
        "network_and_azs": staged.network_and_azs,
        "resource_config": staged.resource_config,
        "errands": staged.errands,
    }
    staged.deployed_at = timezone.now()
    staged.save(
        update_fields=[
            "deployed_product",
            "deployed_version",
            "deployed_manifest",
            "deployed_state",
            "deployed_at",
        ]
    )
