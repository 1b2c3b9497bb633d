"""Resource config as Ops Manager's API shows it: every job of a product, and the Director's.

``GET /staged/products/{guid}/resources``: each job's resource config in
Ops Manager's list shape (``identifier``, ``guid``, ``instances``,
``instance_type_id``, ``persistent_disk_mb`` as saved, ``"automatic"`` or
empty when not, and the ``*_best_fit`` values Automatic resolves to).

For the **BOSH Director** product (its guid from ``GET /staged/products``),
``.../jobs``, ``.../resources`` and ``.../jobs/{job guid}/resource_config``
reach the tile's Resource Config pane, as ``om configure-director``'s
``resource-configuration`` does on Ops Manager: the one job is
``compilation`` (the workers that compile packages); ``PUT`` takes
``instances`` and ``instance_type: {"id"}``, with the pane's ``ETag`` and
``If-Match`` (409 when the pane changed since). ``tiles.api.views.jobs`` and
``resource_config`` hand a Director guid to the functions here.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from director.api.guard import api_view
from tiles import services
from tiles.director_tile import resource_config as compilation

from .common import JSON, body_of, director_versioned, if_match, request_user


def is_director(guid: str) -> bool:
    return guid == services.get_director().guid


def director_jobs() -> Response:
    """``GET .../jobs`` of the Director product."""
    return Response({"jobs": compilation.director_jobs()})


def director_resource_config(request, job_guid: str) -> Response:
    """``GET/PUT .../jobs/{job guid}/resource_config`` of the Director product."""
    if request.method == "PUT":
        data = body_of(request)
        compilation.set_compilation_job_resource_config(
            job_guid, data, user=request_user(request), version=if_match(request)
        )
    return director_versioned(
        compilation.compilation_job_resource_config(job_guid), compilation.PART_COMPILATION
    )


def _product_resources(guid: str) -> list[dict]:
    sp = services.get_staged_product(guid)
    out = []
    for job in services.list_jobs(sp):
        rc = services.get_resource_config(sp, job["name"])
        auto = rc["automatic"]
        disk = (rc.get("persistent_disk") or {}).get("size_mb")
        instance_type = rc["instance_type"]["id"]
        out.append(
            {
                "identifier": job["name"],
                "guid": job["guid"],
                "description": job["label"],
                "instances": rc["instances"],
                "instances_best_fit": auto["instances"],
                "instance_type_id": "" if instance_type == "automatic" else instance_type,
                "instance_type_best_fit": auto["instance_type"],
                "persistent_disk_mb": disk,
                "persistent_disk_best_fit": (
                    str(auto["persistent_disk_mb"])
                    if auto["persistent_disk_mb"] is not None
                    else None
                ),
                "internet_connected": rc["internet_connected"],
                "elb_names": rc["elb_names"],
                "additional_vm_extensions": rc["additional_vm_extensions"],
            }
        )
    return out


@extend_schema(request=None, responses=JSON)
@api_view(["GET"])
def resources(request, guid):
    """``{"resources": [...]}``: each job's resource config (see the module docstring)."""
    if is_director(guid):
        return Response({"resources": compilation.director_resources()})
    return Response({"resources": _product_resources(guid)})
