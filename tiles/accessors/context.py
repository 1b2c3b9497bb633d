"""Context accessors: ``$director.*``, ``$ops_manager.*``, ``$self.*``, ``$runtime.*``.

The keys Ops Manager knows for each object (a known key the context does
not give renders as nil, an unknown key is an error), the platform tile
``$runtime`` reads, and the secrets among them (``ContextSecret``), which
render as variable references like the tile's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tiles import properties as props
from tiles.accessors.scope import Scope, manifest_value, unknown_accessor
from tiles.accessors.syntax import AccessorError, Ref
from tiles.render_context import RenderContext

# Keys of the context objects that exist in Ops Manager; a key that is not
# given in the RenderContext renders as nil, an unknown key is an error.
KNOWN_DIRECTOR = {
    "guid",
    "deployment_ip",
    "hostname",
    "ntp_servers",
    "ca_public_key",
    "tld",
    "username",
    "password",
    "uaa_url",
    "bosh_metrics_forwarder_client_name",
    "bosh_metrics_forwarder_client_secret",
    "metrics_server_enabled",
    "system_metrics_runtime_enabled",
    "dns_release_present",
}


KNOWN_OPS_MANAGER = {
    "ca_certificate",
    "trusted_certificates",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "dns_enabled",
    "restricted_view_api_access_credentials",
    "instance_types_catalog",
    "iaas_type",
    "ops_manager_url",
    "uaa_url",
}


KNOWN_SELF = {
    "uaa_client_name",
    "uaa_client_secret",
    "service_network",
    "stemcell_version",
    "stemcell_os",
    "deployment_name",
    "network_name",
    "guid",
    "product_version",
}


KNOWN_RUNTIME = {
    "system_domain",
    "apps_domain",
    "system_api_url",
    "login_url",
    "uaa_url",
    "console_url",
    "default_reply_to",
    "default_from",
}


#: The platform tile ``$runtime`` reads: Tanzu Application Service (PAS, ERT)
#: is product ``cf``, its domains job-level properties of ``cloud_controller``.
PLATFORM_PRODUCT = "cf"


PLATFORM_PROPERTIES = {
    "system_domain": ".cloud_controller.system_domain",
    "apps_domain": ".cloud_controller.apps_domain",
    # TAS's Email Notifications pane: "From Email" serves both addresses.
    "default_from": ".properties.smtp_from",
    "default_reply_to": ".properties.smtp_from",
}


#: URLs of the platform's components, on its system domain (TAS's routes).
PLATFORM_URLS = {
    "system_api_url": "https://api.{}",
    "login_url": "https://login.{}",
    "uaa_url": "https://uaa.{}",
    "console_url": "https://apps.{}",
}


def context_object(ref: Ref, scope: Scope) -> Any:
    ctx = scope.ctx
    name = ref.segments[0][0]
    if len(ref.segments) != 2:
        raise unknown_accessor(ref)
    key = ref.segments[1][0]
    if name == "director":
        table, known = ctx.director, KNOWN_DIRECTOR
    elif name == "ops_manager":
        table, known = ctx.ops_manager, KNOWN_OPS_MANAGER
    elif name == "runtime":
        if key not in KNOWN_RUNTIME:
            raise unknown_accessor(ref)
        if key in ctx.runtime:
            return ctx.runtime[key]
        return _runtime_value(ref, key, ctx)
    elif name == "self":
        table = {
            "service_network": ctx.network.service_network,
            "stemcell_version": ctx.stemcell.version,
            "stemcell_os": ctx.stemcell.os,
            "deployment_name": ctx.deployment_name,
            "network_name": ctx.network.network,
            **ctx.self_facts,
        }
        known = KNOWN_SELF
    else:
        raise unknown_accessor(ref)
    secret = ctx.context_secrets.get(f"${name}.{key}")
    if secret is not None:
        # The director's and this product's own credentials: a reference, never the value.
        return f"(({secret.variable}.{secret.key}))" if ctx.credential_root else secret.value
    if key in table:
        return table[key]
    if key in known:
        return None
    raise unknown_accessor(ref)


@dataclass(frozen=True)
class ContextSecret:
    """A secret a ``$director``/``$self`` accessor gives: ``((<variable>.<key>))``."""

    variable: str
    key: str
    value: str


def context_credential_values(ctx: RenderContext) -> dict[str, dict[str, str]]:
    """Variable name -> value for the context secrets (as ``credential_values``)."""
    out: dict[str, dict[str, str]] = {}
    for secret in ctx.context_secrets.values():
        out.setdefault(secret.variable, {})[secret.key] = secret.value
    return out


def _platform_value(other, reference: str) -> tuple[bool, Any]:
    """``(declared, value)`` of a property of the platform tile."""
    if other.template is not None:
        bp = other.template.blueprint(reference)
        if bp is None:
            return False, None
        return True, manifest_value(bp, props.effective_value(bp, other.values, reference))
    if reference not in other.values:
        return False, None
    return True, untyped_access(Ref(reference, "dot", ()), other.values[reference], [])


def _runtime_value(ref: Ref, key: str, ctx: RenderContext) -> Any:
    """``$runtime.<key>`` from the staged platform tile (``PLATFORM_PRODUCT``).

    Absent tile, a version without the property, or a required domain not
    set yet: an error naming the accessor and the tile it needs.
    """
    other = ctx.other_products.get(PLATFORM_PRODUCT)
    if other is None:
        raise AccessorError(
            f"{ref.raw} needs the platform tile '{PLATFORM_PRODUCT}' "
            "(Tanzu Application Service) staged; it is not"
        )
    base = "system_domain" if key in PLATFORM_URLS else key
    reference = PLATFORM_PROPERTIES[base]
    declared, value = _platform_value(other, reference)
    tile = f"'{PLATFORM_PRODUCT}' {other.version}".rstrip()
    if not declared:
        raise AccessorError(f"{ref.raw}: the platform tile {tile} has no property {reference}")
    if props.is_empty(value):
        if base in ("default_from", "default_reply_to"):
            return None  # optional in the platform tile
        raise AccessorError(
            f"{ref.raw}: {reference} of the platform tile {tile} is not set; configure it there"
        )
    if key in PLATFORM_URLS:
        return PLATFORM_URLS[key].format(str(value).strip())
    return value


def untyped_access(ref: Ref, value: Any, names: list[str]) -> Any:
    if not names or names == ["value"]:
        if isinstance(value, Mapping) and set(value) == {"secret"}:
            return value["secret"]
        return value
    if names == ["value_present?"]:
        return not props.is_empty(value)
    if len(names) == 1 and isinstance(value, Mapping) and names[0] in value:
        return value[names[0]]
    raise unknown_accessor(ref)
