"""Ops Manager's ``(( ... ))`` accessors, evaluated inside tile manifest snippets.

Tile authors write BOSH job properties as YAML snippets in which
``(( expr ))`` is replaced, at render time, by configured values:

- ``(( .properties.x.value ))``, ``.identity``, ``.password``, ``.cert_pem``,
  ``.private_key_pem``, ``.public_key_pem``, ``.cert_and_private_key_pems``,
  ``.secret``, ``.salt``, ``.sha512_hashed_password``, ``.uuid``,
  ``.public_key_openssh``, ``.public_key_fingerprint``, ``.parsed_strings``,
  ``.parsed_ip_ranges``, ``.parsed_network_addresses``, ``.value_present?``
- selectors: ``.value`` (the select_value), ``.selected_option.parsed_manifest(n)``,
  ``.parsed_manifest(n)`` (same), ``.properties.sel.<option>.<prop>.value``
- collections: ``.value`` (list of records), ``.parsed_manifest(n)`` (the
  named manifest rendered per record, with ``current_record.<field>.value``)
- job properties ``.<job>.<prop>.value``, or ``<prop>.value`` inside the job
- job facts ``.<job>.instances`` and, inside the job, bare ``instances``,
  ``any_instances``, ``name``, ``cpu``, ``ram``, ``ephemeral_disk``,
  ``persistent_disk``, ``ips``, ``first_ip``, ``dns_names``, ``subnet_cidrs``
- ``$director.*``, ``$ops_manager.*``, ``$self.*``, ``$runtime.*`` (the Tile
  Developer Guide's table). ``$runtime`` reads the staged platform tile
  (product ``cf``, TAS): ``system_domain`` and ``apps_domain`` are its
  ``.cloud_controller.*`` properties, ``system_api_url``, ``login_url``,
  ``uaa_url`` and ``console_url`` are ``https://{api,login,uaa,apps}.<system
  domain>``, ``default_from``/``default_reply_to`` its ``.properties.smtp_from``;
  without that tile, or with a version lacking the property, the error names
  the accessor and the tile. Secrets among them (``$director.password``,
  ``$director.bosh_metrics_forwarder_client_secret``,
  ``$self.uaa_client_secret``) render as references like the tile's own
  (``RenderContext.context_secrets``)
- ``..<product>.deployment_name|network_name|present?`` and
  ``..<product>.properties.x.value`` / ``..<product>.<job>.x.value``
- ``.deployment_name``, ``.network_name`` of this product
- ``a || b`` (first value that is not nil/false/blank), ``c ? a : b``,
  ``&&``, ``!``, literals (``'text'``, ``"text"``, numbers, true, false,
  nil, ``[]``, ``{}``)

Secrets by reference: when the context names a ``credential_root``
(Ops Manager's ``/opsmgr``), a secret or credential renders not as its
value but as the director variable holding it, the way Ops Manager hands
tile secrets to BOSH through CredHub:
``(( .properties.admin.password ))`` becomes
``((/opsmgr/<product guid>/admin.password))`` and a job's
``(( .web.api_key.value ))`` ``((/opsmgr/<guid>/web/api_key.value))``
(``.properties`` dropped, dots of the reference as slashes; a collection
record's field ``<collection>/<record guid>/<field>``). ``credential_values``
gives what the variable store must hold under those names. Without a root
the values are written in (pure tests, previews of a template).

A string that is exactly one expression takes the expression's value (a
list stays a list); expressions inside longer text are interpolated as
text (nil as empty, lists/maps as JSON). ``((( name )))`` is left for BOSH
as the variable ``((name))``.

IP facts (``ips``, ``first_ip``) are not known before the director places
instances. Unless the job has static IPs (its ``static_ips`` property) or
the context passes the IPs of the last deploy, they render as BOSH DNS
names ``<index>.<instance group>.<network>.<deployment>.bosh`` (names
canonicalised BOSH's way: lower case, ``_`` as ``-``), which resolve on VMs
once deployed and work the way BOSH links' addresses do.

Evaluation is pure. Errors are ``AccessorError``; they name the expression,
never a value.
"""

from __future__ import annotations

from tiles.accessors.context import (
    KNOWN_DIRECTOR,
    KNOWN_OPS_MANAGER,
    KNOWN_RUNTIME,
    KNOWN_SELF,
    PLATFORM_PRODUCT,
    ContextSecret,
    context_credential_values,
)
from tiles.accessors.credential import CREDENTIAL_ROOT, credential_values
from tiles.accessors.evaluate import evaluate, evaluate_text, evaluate_tree, parse_snippet
from tiles.accessors.scope import (
    JOB_FACTS,
    Scope,
    credential_name,
    effective_values,
    manifest_value,
)
from tiles.accessors.syntax import AccessorError, Ref, find_expressions, parse_expression

__all__ = [
    "AccessorError",
    "Ref",
    "Scope",
    "evaluate",
    "evaluate_text",
    "evaluate_tree",
    "parse_snippet",
    "parse_expression",
    "find_expressions",
    "manifest_value",
    "effective_values",
    "credential_name",
    "credential_values",
    "CREDENTIAL_ROOT",
    "JOB_FACTS",
    "KNOWN_DIRECTOR",
    "KNOWN_OPS_MANAGER",
    "KNOWN_SELF",
    "KNOWN_RUNTIME",
    "PLATFORM_PRODUCT",
    "ContextSecret",
    "context_credential_values",
]
