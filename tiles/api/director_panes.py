"""The Director tile's API (Ops Manager's ``/staged/director/...`` paths), thin over
``tiles.director_tile``: properties (vCenter, Director Config with the health
monitor's email settings, Security, Syslog), "test connection", availability
zones, networks, the director's network and AZ, the cloud-config it renders,
VM and disk types.

Each read answers the ``ETag`` of its pane; a ``PUT`` with ``If-Match`` is 409
when the pane changed since. Names that vCenter holds (datacenter,
datastores, clusters, resource pools, portgroups) are checked against it on
save (``ignore_unreachable_vcenter``).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from director.api.guard import api_view
from opsconsole.apierrors import ApiError
from opsconsole.errors import Conflict, ServiceError
from tiles import director_security, services
from tiles.director_tile import hm_email
from tiles.director_tile.checks import IGNORE_UNREACHABLE, VCenterCheck
from tiles.director_tile.common import MASK

from .common import IF_MATCH, JSON, body_of, director_versioned, if_match, request_user

#: ``?ignore_unreachable_vcenter=true`` on the Director tile's vCenter, AZ and network writes.
IGNORE_UNREACHABLE_VCENTER = OpenApiParameter(
    "ignore_unreachable_vcenter",
    bool,
    OpenApiParameter.QUERY,
    required=False,
    description=(
        "Names (datacenter, datastores, clusters, resource pools, portgroups) are checked "
        "against vCenter before saving; a wrong one is 422 naming its field. When vCenter cannot "
        "check them (unreachable, or the saved vCenter settings do not log in) the write is 422 "
        "saying why, unless this is true: then it is saved and the answer's `warnings` say what "
        "was not checked."
    ),
)


def _vcenter_check(request):
    """This write's check against vCenter (``tiles.director_tile.checks``)."""
    flag = str(request.query_params.get(IGNORE_UNREACHABLE, "")).lower()
    if flag not in ("", "true", "false", "1", "0"):
        raise ApiError({IGNORE_UNREACHABLE: ["must be true or false"]}, 400)
    return VCenterCheck(ignore_unreachable=flag in ("true", "1"))


def _with_warnings(data: dict, check) -> dict:
    return {**data, "warnings": check.warnings} if check.warnings else data


#: Ops Manager's place for the health monitor's email settings, in ``director_configuration``.
HM_EMAIL = "hm_emailer_options"
HM_EMAIL_PART = hm_email.PART_HM_EMAIL
DIRECTOR_PROPERTIES = (
    "iaas_configuration",
    "director_configuration",
    "security_configuration",
    "syslog_configuration",
)


def _director_properties() -> dict:
    d = services.get_director()
    props = services.director_properties()
    emailer = hm_email.hm_email_settings()
    emailer["smtp_password"] = MASK if emailer.pop("password_stored") else ""
    props["director_configuration"] = {**props["director_configuration"], HM_EMAIL: emailer}
    return {
        **props,
        "security_configuration": director_security.security_configuration(d),
        "syslog_configuration": director_security.syslog_configuration(d),
    }


@extend_schema(request=JSON, responses=JSON)
@extend_schema(methods=["PUT"], parameters=[IF_MATCH, IGNORE_UNREACHABLE_VCENTER])
@api_view(["GET", "PUT"])
def director_properties(request):
    """``{"iaas_configuration", "director_configuration", "security_configuration",
    "syslog_configuration"}``; the vCenter password reads ``***``.

    ``director_configuration.hm_emailer_options`` (Ops Manager's place) is the
    health monitor's email settings (``tiles.director_tile.hm_email``; they
    take effect at once); the SMTP password reads ``***``, and sent back as
    ``***`` or empty keeps the stored one.

    ``ETag`` covers the sections; ``PUT`` with ``If-Match`` is 409 when a
    section it writes changed since. A Security or Syslog setting that cannot
    take effect yet is 422 naming the field and why (``tiles.director_security``).
    The vCenter settings are checked against vCenter (``ignore_unreachable_vcenter``).
    A write is all or nothing."""
    check = _vcenter_check(request)
    if request.method == "PUT":
        with transaction.atomic():
            _put_director_properties(request, check)
    return director_versioned(
        _with_warnings(_director_properties(), check), *DIRECTOR_PROPERTIES, HM_EMAIL_PART
    )


def _put_director_properties(request, check) -> None:
    version = if_match(request)
    data = dict(body_of(request))
    emailer = None
    if isinstance(data.get("director_configuration"), Mapping):
        dcfg = dict(data["director_configuration"])
        emailer = dcfg.pop(HM_EMAIL, None)
        if dcfg:
            data["director_configuration"] = dcfg
        else:
            del data["director_configuration"]
    known = set(DIRECTOR_PROPERTIES)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ApiError(
            {(k or "body"): [f"'{k}' is not a director property section"] for k in unknown},
            422,
        )
    if not set(data) & known and emailer is None:
        raise ApiError(
            {"iaas_configuration": [f"give one or more of {', '.join(DIRECTOR_PROPERTIES)}"]}
        )
    if emailer is not None:
        if not isinstance(emailer, Mapping):
            raise ApiError({f"director_configuration/{HM_EMAIL}": ["must be an object"]})
        try:
            hm_email.set_hm_email_settings(emailer, user=request_user(request), version=version)
        except Conflict:
            raise
        except ServiceError as exc:
            raise ServiceError(
                {f"director_configuration/{HM_EMAIL}/{k}": v for k, v in exc.errors.items()}
            ) from None
    # Validate the Security and Syslog sections before anything else is written.
    d = services.get_director()
    if "security_configuration" in data:
        director_security.validate_security(
            data["security_configuration"], d.security_configuration or {}
        )
    if "syslog_configuration" in data:
        director_security.validate_syslog(
            data["syslog_configuration"], d.syslog_configuration or {}
        )
    if {"iaas_configuration", "director_configuration"} & set(data):
        services.set_director_properties(
            iaas_configuration=data.get("iaas_configuration"),
            director_configuration=data.get("director_configuration"),
            user=request_user(request),
            version=version,
            check=check,
        )
    director_security.set_security_and_syslog(
        data.get("security_configuration"),
        data.get("syslog_configuration"),
        user=request_user(request),
        version=version,
    )


@extend_schema(request=JSON, responses=JSON)
@api_view(["POST"])
def director_test_connection(request):
    """``POST {"iaas_configuration": {...}}`` (optional): the vCenter's inventory, or the error."""
    data = request.data if isinstance(request.data, Mapping) else {}
    iaas = data.get("iaas_configuration", data) if data else None
    if iaas is not None and not isinstance(iaas, Mapping):
        raise ApiError({"iaas_configuration": ["must be an object of vCenter settings"]}, 422)
    return Response(services.test_vcenter_connection(iaas or None))


@extend_schema(request=JSON, responses=JSON)
@extend_schema(
    methods=["PUT"],
    operation_id="staged_director_availability_zones_replace",
    parameters=[IF_MATCH, IGNORE_UNREACHABLE_VCENTER],
)
@extend_schema(methods=["POST"], parameters=[IF_MATCH, IGNORE_UNREACHABLE_VCENTER])
@api_view(["GET", "POST", "PUT"])
def availability_zones(request):
    """``GET`` all; ``POST {"availability_zone"}`` adds one; ``PUT {"availability_zones"}`` replaces all.

    ``ETag``/``If-Match``: the version of the AZs (all of them)."""
    kw = {"user": request_user(request)}
    check = _vcenter_check(request)
    if request.method in ("POST", "PUT"):
        kw["version"] = if_match(request)
        kw["check"] = check
    if request.method == "POST":
        az = services.add_availability_zone(body_of(request, "availability_zone"), **kw)
        return director_versioned(
            _with_warnings({"availability_zone": az}, check),
            "availability_zones",
            status=status.HTTP_201_CREATED,
        )
    if request.method == "PUT":
        services.set_availability_zones(body_of(request, "availability_zones"), **kw)
    return director_versioned(
        _with_warnings({"availability_zones": services.list_availability_zones()}, check),
        "availability_zones",
    )


@extend_schema(request=JSON, responses=JSON, parameters=[IF_MATCH, IGNORE_UNREACHABLE_VCENTER])
@api_view(["PUT"])
def availability_zone(request, az_guid):
    check = _vcenter_check(request)
    az = services.update_availability_zone(
        az_guid,
        body_of(request, "availability_zone"),
        user=request_user(request),
        version=if_match(request),
        check=check,
    )
    return director_versioned(
        _with_warnings({"availability_zone": az}, check), "availability_zones"
    )


@extend_schema(request=JSON, responses=JSON)
@extend_schema(methods=["PUT"], parameters=[IF_MATCH, IGNORE_UNREACHABLE_VCENTER])
@api_view(["GET", "PUT"])
def director_networks(request):
    """``{"icmp_checks_enabled", "networks": [{"name", "subnets": [...]}]}``; ``ETag``/``If-Match``.

    Portgroups are checked against vCenter (``ignore_unreachable_vcenter``)."""
    if request.method == "PUT":
        check = _vcenter_check(request)
        out = services.set_networks(
            body_of(request), user=request_user(request), version=if_match(request), check=check
        )
        return director_versioned(_with_warnings(out, check), "networks")
    return director_versioned(services.get_networks(), "networks")


@extend_schema(request=JSON, responses=JSON)
@extend_schema(methods=["PUT"], parameters=[IF_MATCH])
@api_view(["GET", "PUT"])
def director_network_and_az(request):
    """``ETag``/``If-Match`` as for the other staged writes."""
    if request.method == "PUT":
        out = services.set_network_and_az(
            body_of(request), user=request_user(request), version=if_match(request)
        )
        return director_versioned(out, "network_and_az")
    return director_versioned(services.get_network_and_az(), "network_and_az")


@extend_schema(request=JSON, responses=JSON)
@api_view(["GET"])
def cloud_config(request):
    return Response({"cloud_config": services.render_cloud_config()})


@extend_schema(request=JSON, responses=JSON)
@extend_schema(methods=["PUT"], parameters=[IF_MATCH])
@api_view(["GET", "PUT"])
def vm_types(request):
    """``{"vm_types": [{"name", "cpu", "ram", "ephemeral_disk", "builtin"}]}``; PUT replaces.

    ``ETag``/``If-Match`` as for the other staged writes."""
    if request.method == "PUT":
        out = services.set_vm_types(
            body_of(request, "vm_types"), user=request_user(request), version=if_match(request)
        )
        return director_versioned({"vm_types": out}, "vm_types")
    return director_versioned({"vm_types": services.vm_types()}, "vm_types")


@extend_schema(request=JSON, responses=JSON)
@api_view(["GET"])
def disk_types(request):
    return Response({"disk_types": services.disk_types()})
