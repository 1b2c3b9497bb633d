"""Console API views (Ops Manager paths and body shapes), thin over ``tiles.services``.

Reads are open to every role, changes need a control role
(``opsconsole.auth.RolePermission``), credential values need a role that may
see credentials (``opsconsole.auth.can_see_credentials``): others get the
credential references only, manifests with ``((redacted))`` values, and 403
on a credential's value. Errors are ``{"errors": {field or reference:
[messages]}}`` with the service's status (400/404/409/422), never a 500.

A staged product's properties, networks and AZs, resource config and
errands, and the Director tile's properties, AZs, networks, network and AZ
and VM types (``tiles.api.director_panes``) answer with an ``ETag`` (their version). A ``PUT`` with
``If-Match: <that ETag>`` is refused with 409 naming who changed what since
(``tiles.services.versions``); a ``PUT`` without ``If-Match`` is accepted,
as Ops Manager's clients send none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import parser_classes
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from director.api import serializers as director_shapes
from director.api.guard import api_view
from director.api.views import STEMCELL_UPLOAD
from opsconsole import __version__
from opsconsole.apierrors import ApiError
from opsconsole.auth import can_see_credentials
from tiles import services
from tiles.models import DIRECTOR_PRODUCT_NAME
from tiles.services import versions
from tiles.services.diffs import redact, secret_strings

from . import resources
from .common import (
    IF_MATCH,
    JSON,
    body_of,
    if_match,
    iso_time,
    request_user,
    staged_or_404,
    versioned,
)

# --------------------------------------------------------------------------- available products


def _available(p) -> dict:
    return {
        "name": p.name,
        "product_version": p.version,
        "label": p.label,
        "uploaded_at": iso_time(p.uploaded_at),
        "uploaded_by": p.uploaded_by,
        "releases": p.releases,
        "warnings": p.warnings,
    }


@extend_schema(request=JSON, responses=JSON)
@api_view(["GET", "POST", "DELETE"])
@parser_classes([MultiPartParser, FormParser, JSONParser])
def available_products(request):
    """``GET`` list; ``POST`` multipart ``product[file]``; ``DELETE ?product_name=&version=`` (no
    parameters: every unused product)."""
    if request.method == "POST":
        upload = request.FILES.get("product[file]") or request.FILES.get("file")
        if upload is None:
            raise ApiError({"product[file]": ["a .pivotal file or a metadata YAML is required"]})
        product = services.import_product(upload, upload.name, request_user(request))
        return Response(_available(product), status=status.HTTP_200_OK)
    if request.method == "DELETE":
        name = request.query_params.get("product_name")
        version = request.query_params.get("version")
        if name or version:
            if not (name and version):
                raise ApiError({"version" if name else "product_name": ["is required"]})
            services.delete_available_product(name, version)
            return Response({}, status=status.HTTP_200_OK)
        return Response({"deleted": services.delete_unused_products()})
    return Response([_available(p) for p in services.list_available_products()])


# --------------------------------------------------------------------------- staged products


def _staged_json(sp) -> dict:
    return {
        "installation_name": sp.guid,
        "guid": sp.guid,
        "type": sp.product.name,
        "product_version": sp.product.version,
        "label": sp.product.label,
        "marked_for_deletion": sp.marked_for_deletion,
        "deployed_product_version": sp.deployed_version or None,
        "warnings": sp.product.warnings,
    }


def _director_json() -> dict:
    d = services.get_director()
    return {
        "installation_name": d.guid,
        "guid": d.guid,
        "type": DIRECTOR_PRODUCT_NAME,
        "product_version": __version__,
        "label": "BOSH Director",
        "marked_for_deletion": False,
        "deployed_product_version": __version__ if d.deployed_at else None,
    }


@extend_schema(request=JSON, responses=JSON)
@extend_schema(methods=["GET"], operation_id="staged_products_list")
@api_view(["GET", "POST"])
def staged_products(request):
    """``GET`` the Director tile then staged products; ``POST {"name", "product_version"}`` stages."""
    if request.method == "POST":
        data = body_of(request)
        errors = {k: ["is required"] for k in ("name", "product_version") if not data.get(k)}
        if errors:
            raise ApiError(errors)
        existed = services.StagedProduct.objects.filter(product__name=data["name"]).exists()
        sp = services.stage_product(str(data["name"]), str(data["product_version"]))
        return Response(
            _staged_json(sp), status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        )
    return Response(
        [_director_json(), *(_staged_json(sp) for sp in services.list_staged_products())]
    )


@extend_schema(request=JSON, responses=JSON)
@api_view(["GET", "PUT", "DELETE"])
def staged_product(request, guid):
    """``GET`` one; ``PUT {"to_version"}`` upgrades; ``DELETE`` unstages."""
    if guid == services.get_director().guid:
        if request.method == "DELETE":
            raise ApiError({"guid": ["the BOSH Director cannot be deleted"]}, 422)
        if request.method == "GET":
            return Response(_director_json())
        raise ApiError({"guid": ["the BOSH Director cannot be upgraded here"]}, 422)
    sp = staged_or_404(guid)
    if request.method == "DELETE":
        services.unstage_product(guid)
        return Response({"component": {"guid": guid}})
    if request.method == "PUT":
        version = body_of(request, "to_version")
        sp = services.stage_product(sp.product.name, str(version))
    return Response(_staged_json(sp))


@extend_schema(request=JSON, responses=JSON)
@extend_schema(methods=["PUT"], parameters=[IF_MATCH])
@api_view(["GET", "PUT"])
def properties(request, guid):
    """``{"properties": {ref: {"type", "configurable", "credential", "value"}}}``; PUT a partial map.

    ``ETag``: the version of every property; ``PUT`` with ``If-Match`` is 409
    when a property changed since (none sent: accepted).
    """
    sp = staged_or_404(guid)
    if request.method == "PUT":
        version = if_match(request)
        values = body_of(request, "properties")
        services.set_properties(sp, values, user=request_user(request), version=version)
        sp = staged_or_404(guid)
    return versioned({"properties": services.get_properties(sp)}, sp, versions.properties_part())


@extend_schema(request=JSON, responses=JSON)
@extend_schema(methods=["PUT"], parameters=[IF_MATCH])
@api_view(["GET", "PUT"])
def networks_and_azs(request, guid):
    """``ETag`` and ``If-Match`` as for ``properties``."""
    sp = staged_or_404(guid)
    if request.method == "PUT":
        version = if_match(request)
        services.set_networks_and_azs(
            sp, body_of(request, "networks_and_azs"), user=request_user(request), version=version
        )
        sp = staged_or_404(guid)
    return versioned(services.get_networks_and_azs(sp), sp, [versions.NETWORKS_AND_AZS])


@extend_schema(request=JSON, responses=JSON)
@api_view(["GET"])
def jobs(request, guid):
    """``{"jobs": [{"name", "guid"}]}``; the Director's: its compilation job."""
    if resources.is_director(guid):
        return resources.director_jobs()
    return Response(
        {
            "jobs": [
                {"name": j["name"], "guid": j["guid"]}
                for j in services.list_jobs(staged_or_404(guid))
            ]
        }
    )


@extend_schema(request=JSON, responses=JSON)
@extend_schema(methods=["PUT"], parameters=[IF_MATCH])
@api_view(["GET", "PUT"])
def resource_config(request, guid, job_guid):
    """``{"instances", "instance_type": {"id"}, "persistent_disk": {"size_mb"}, ...}``.

    ``ETag`` and ``If-Match`` as for ``properties``, for this job. The Director's
    compilation job: ``tiles.api.resources``."""
    if resources.is_director(guid):
        return resources.director_resource_config(request, job_guid)
    sp = staged_or_404(guid)
    job = services.job_name_for_guid(sp, job_guid)
    part = [versions.resource_config_part(job)]
    if request.method == "PUT":
        version = if_match(request)
        data = body_of(request)
        kwargs = {}
        if "instances" in data:
            kwargs["instances"] = data["instances"]
        if "instance_type" in data:
            kwargs["instance_type"] = data["instance_type"]
        if "persistent_disk" in data:
            kwargs["persistent_disk_mb"] = data["persistent_disk"]
        out = services.set_resource_config(
            sp, job, **kwargs, user=request_user(request), version=version
        )
        return versioned(out, sp, part)
    return versioned(services.get_resource_config(sp, job), sp, part)


@extend_schema(request=JSON, responses=JSON)
@extend_schema(methods=["PUT"], parameters=[IF_MATCH])
@api_view(["GET", "PUT"])
def errands(request, guid):
    """``{"errands": [{"name", "post_deploy", "pre_delete"}]}``; ``ETag``/``If-Match`` as above."""
    sp = staged_or_404(guid)
    if request.method == "PUT":
        version = if_match(request)
        out = services.set_errands(
            sp, body_of(request, "errands"), user=request_user(request), version=version
        )
        return versioned({"errands": out}, sp, [versions.ERRANDS])
    return versioned({"errands": services.get_errands(sp)}, sp, [versions.ERRANDS])


@extend_schema(request=JSON, responses=JSON)
@api_view(["GET"])
def staged_manifest(request, guid):
    """``{"manifest": {...}}``; credentials ``((redacted))`` for roles that may not see them."""
    sp = staged_or_404(guid)
    manifest = services.render_manifest(sp, require_stemcell=False)
    if not can_see_credentials(request.user):
        sp = staged_or_404(guid)
        manifest = redact(manifest, secret_strings(sp.secrets or {}))
    return Response({"manifest": manifest})


# --------------------------------------------------------------------------- pending, diff, revert


@extend_schema(request=JSON, responses=JSON)
@api_view(["GET"])
def pending_changes(request):
    """Ops Manager's ``{"product_changes": [...]}``; while an Apply Changes runs, no plan.

    Deviation from Ops Manager (which answers as if nothing ran): while an
    installation runs, the director's plan is not computed, as on the
    Review Pending Changes page (``tiles.views.changes``): it would be
    computed against deployments the installation is still changing (an
    instance it is updating reads as "recreate: previous deploy did not
    finish"). The shape stays Ops Manager's: each product's ``plan`` is
    ``null``, and the answer adds ``running_installation`` (``id``,
    ``user_name``, ``started_at``) and a ``notice`` naming it; each product
    that would have a plan (install, update) adds ``plan_waits_for_installation``
    (its id). The product changes (actions, checks, diffs) are compared with
    what was deployed before it started.
    """
    running = services.running_installation()
    if running is None:
        return Response(services.pending_changes())
    answer = services.pending_changes(with_plan=False)
    for change in answer["product_changes"]:
        if change.get("action") in ("install", "update"):
            change["plan_waits_for_installation"] = running.id
    answer["running_installation"] = {
        "id": running.id,
        "user_name": running.user_name,
        "started_at": iso_time(running.started_at),
    }
    answer["notice"] = (
        f"Installation {running.id} is running: the director's plan is computed once it "
        "finishes; the changes are against what was deployed before it started."
    )
    return Response(answer)


@extend_schema(request=JSON, responses=JSON)
@api_view(["GET"])
def product_diff(request, guid):
    return Response(services.product_diff(guid))


@extend_schema(request=JSON, responses=JSON)
@api_view(["GET"])
def director_diff(request):
    return Response(services.director_diff())


@extend_schema(request=JSON, responses=JSON)
@api_view(["DELETE"])
def staged(request):
    """Revert: discard every staged change."""
    services.revert_staged()
    return Response({})


# --------------------------------------------------------------------------- installations


def _installation(inst, with_steps: bool = True) -> dict:
    out: dict[str, Any] = {
        "id": inst.id,
        "user_name": inst.user_name,
        "status": inst.status,
        "started_at": iso_time(inst.started_at),
        "finished_at": iso_time(inst.finished_at),
        "deploy_products": inst.deploy_products,
        "message": inst.message,
    }
    if with_steps:
        out["products"] = [
            {
                "guid": st.product_guid,
                "identifier": st.product_name,
                "product_version": st.product_version,
                "kind": st.kind,
                "label": st.label,
                "action": st.action,
                "errand": st.errand or None,
                "state": st.state,
                "task_id": st.task_id,
                "started_at": iso_time(st.started_at),
                "finished_at": iso_time(st.finished_at),
                "duration_seconds": st.duration.total_seconds() if st.duration else None,
                "message": st.message,
            }
            for st in inst.steps.all()
        ]
    return out


@extend_schema(request=JSON, responses=JSON)
@extend_schema(methods=["GET"], operation_id="installations_list")
@api_view(["GET", "POST"])
def installations(request):
    """``POST`` Apply Changes -> 202 ``{"install": {"id"}}``; ``GET`` the change log."""
    if request.method == "POST":
        data = request.data if isinstance(request.data, Mapping) else {}
        inst = services.apply_changes(
            request_user(request),
            deploy_products=data.get("deploy_products", "all"),
            errands=data.get("errands"),
            ignore_warnings=data.get("ignore_warnings", False),
        )
        url = request.build_absolute_uri(reverse("api-installation", args=[inst.id]))
        return Response(
            {"install": {"id": inst.id}}, status=status.HTTP_202_ACCEPTED, headers={"Location": url}
        )
    try:
        limit = max(1, min(int(request.query_params.get("limit", 50)), 500))
        offset = max(0, int(request.query_params.get("offset", 0)))
    except ValueError:
        raise ApiError({"limit": ["limit and offset must be numbers"]}) from None
    rows = services.list_installations()[offset : offset + limit]
    return Response({"installations": [_installation(i) for i in rows]})


@extend_schema(request=JSON, responses=JSON)
@api_view(["GET"])
def installation(request, installation_id):
    return Response(_installation(services.get_installation(installation_id)))


@extend_schema(request=JSON, responses=JSON)
@api_view(["GET"])
def installation_logs(request, installation_id):
    return Response({"logs": services.installation_logs(installation_id)})


# --------------------------------------------------------------------------- deployed


@extend_schema(request=JSON, responses=JSON)
@api_view(["GET"])
def deployed_products(request):
    return Response(services.list_deployed_products())


@extend_schema(request=JSON, responses=JSON)
@api_view(["GET"])
def deployed_manifest(request, guid):
    return Response(
        {
            "manifest": services.deployed_manifest(
                guid, reveal_secrets=can_see_credentials(request.user)
            )
        }
    )


@extend_schema(request=JSON, responses=JSON)
@api_view(["GET"])
def deployed_status(request, guid):
    return Response({"status": services.deployed_status(guid)})


@extend_schema(request=JSON, responses=JSON)
@extend_schema(methods=["GET"], operation_id="deployed_products_credentials_list")
@api_view(["GET"])
def credentials(request, guid):
    return Response({"credentials": services.list_credentials(guid)})


@extend_schema(request=JSON, responses=JSON)
@api_view(["GET"])
def credential(request, guid, ref):
    """One deployed credential's value, for roles that may see credentials; each read is
    an audit event (``reveal credential``) and the answer is never cached."""
    if not can_see_credentials(request.user):
        raise ApiError({"credential": ["Your role may not see credentials."]}, 403)
    response = Response(services.reveal_credential(guid, ref, request_user(request)))
    response["Cache-Control"] = "no-store"
    return response


# --------------------------------------------------------------------------- stemcell library


def _library_stemcell(result) -> dict:
    lib = result.stemcell
    return {
        "name": lib.name,
        "version": lib.version,
        "operating_system": lib.operating_system,
        "sha1": lib.sha1,
        "uploaded_at": iso_time(lib.uploaded_at),
        "added": result.created,
        "message": result.message,
    }


@extend_schema(request=STEMCELL_UPLOAD, responses=JSON)
@api_view(["POST"])
@parser_classes([MultiPartParser, FormParser])
def stemcells_upload(request):
    """``POST /api/v0/stemcells``: multipart ``stemcell[file]``.

    Keeps the file in the Stemcell Library and starts its director upload:
    202 with the director task (``Location``: the task), or 200 when the
    director has the stemcell already. ``stemcell_library`` says whether the
    library added the file or already held that name/version (then the kept
    file is not replaced).
    """
    upload = request.FILES.get("stemcell[file]") or request.FILES.get("file")
    if upload is None:
        raise ApiError({"stemcell[file]": ["a tarball is required (multipart form field)"]})
    result = services.import_stemcell(upload, request_user(request))
    task = result.task
    url = request.build_absolute_uri(reverse("director-task", args=[task.id]))
    return Response(
        {**director_shapes.task(task), "stemcell_library": _library_stemcell(result)},
        status=status.HTTP_200_OK if task.is_terminal else status.HTTP_202_ACCEPTED,
        headers={"Location": url},
    )


@extend_schema(responses=JSON)
@api_view(["GET"])
def stemcell_assignments(request):
    """``GET /api/v0/stemcell_assignments``: per staged product, the stemcell versions that match.

    ``{"products": [{"guid", "identifier", "staged_stemcell_version",
    "available_stemcell_versions", "required_stemcell_version",
    "required_stemcell_os"}]}``; the available versions are those of the
    director and of the Stemcell Library.
    """
    return Response(services.stemcell_assignments())
