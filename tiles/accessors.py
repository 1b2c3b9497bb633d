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

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import yaml

from tiles import properties as props
from tiles.properties.scalar import csv_items
from tiles.render_context import RenderContext, job_facts
from tiles.template import parse_yaml

if TYPE_CHECKING:
    from tiles.template import ProductTemplate

__all__ = [
    "AccessorError",
    "Scope",
    "evaluate_text",
    "evaluate_tree",
    "find_expressions",
    "manifest_value",
    "credential_name",
    "credential_values",
    "CREDENTIAL_ROOT",
    "JOB_FACTS",
    "ContextSecret",
    "context_credential_values",
    "PLATFORM_PRODUCT",
]

#: Where Ops Manager keeps tile credentials in CredHub; ours is the director's variable store.
CREDENTIAL_ROOT = "/opsmgr"


class AccessorError(Exception):
    """An expression cannot be evaluated; the message names it (no values)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


JOB_FACTS = (
    "name",
    "instances",
    "any_instances",
    "cpu",
    "ram",
    "ephemeral_disk",
    "persistent_disk",
    "ips",
    "first_ip",
    "dns_names",
    "subnet_cidrs",
    "deployment_name",
)

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


# --------------------------------------------------------------------------
# Finding expressions in text


@lru_cache(maxsize=8192)
def find_expressions(text: str) -> tuple[tuple[str, str], ...]:
    """Split text into ``("text", s)``, ``("expr", inner)`` and ``("bosh", name)`` parts.

    ``((( x )))`` is a BOSH variable; ``(( ... ))`` ends at the first ``))``
    outside quotes and outside parentheses opened within it.
    """
    parts: list[tuple[str, str]] = []
    pos = 0
    n = len(text)
    while True:
        start = text.find("((", pos)
        if start < 0:
            break
        if text.startswith("(((", start):
            end = text.find(")))", start + 3)
            if end < 0:
                break
            if start > pos:
                parts.append(("text", text[pos:start]))
            parts.append(("bosh", text[start + 3 : end].strip()))
            pos = end + 3
            continue
        i = start + 2
        depth = 0
        quote = None
        end = -1
        while i < n:
            ch = text[i]
            if quote:
                if ch == quote:
                    quote = None
            elif ch in "'\"":
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0 and text.startswith("))", i):
                    end = i
                    break
                depth = max(0, depth - 1)
            i += 1
        if end < 0:
            break
        if start > pos:
            parts.append(("text", text[pos:start]))
        parts.append(("expr", text[start + 2 : end].strip()))
        pos = end + 2
    if pos < n:
        parts.append(("text", text[pos:]))
    return tuple(parts)


# --------------------------------------------------------------------------
# Parsing one expression

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<str>'[^']*'|"[^"]*")
  | (?P<op>\|\||&&|\?|:|!|\(|\)|\[\]|\{\})
  | (?P<num>-?\d+(?:\.\d+)?(?![\w.\-]))
  | (?P<ref>(?:\.\.|\.|\$)?[A-Za-z0-9_][\w\-]*\??
        (?:\([^()]*\))?
        (?:\.[A-Za-z0-9_][\w\-]*\??(?:\([^()]*\))?)*)
    """,
    re.VERBOSE,
)
_SEGMENT_RE = re.compile(r"([A-Za-z0-9_][\w\-]*\??)(?:\(([^()]*)\))?")


@dataclass(frozen=True)
class Ref:
    raw: str
    kind: str  # "dot", "product", "context", "local"
    segments: tuple[tuple[str, str | None], ...]  # (name, call argument)


def _tokenize(expr: str) -> list[tuple[str, str]]:
    tokens = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN_RE.match(expr, pos)
        if not m or m.end() == pos:
            raise AccessorError(f"cannot parse (( {expr} )) at '{expr[pos : pos + 20]}'")
        kind = m.lastgroup
        if kind != "ws":
            tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def _make_ref(raw: str) -> Ref | tuple:
    if raw in ("true", "false"):
        return ("lit", raw == "true")
    if raw in ("nil", "null"):
        return ("lit", None)
    if raw.startswith(".."):
        kind, body = "product", raw[2:]
    elif raw.startswith("."):
        kind, body = "dot", raw[1:]
    elif raw.startswith("$"):
        kind, body = "context", raw[1:]
    else:
        kind, body = "local", raw
    segments = []
    pos = 0
    while pos < len(body):
        m = _SEGMENT_RE.match(body, pos)
        if not m:
            raise AccessorError(f"cannot parse reference {raw}")
        arg = m.group(2)
        segments.append((m.group(1), None if arg is None else arg.strip().strip("'\"")))
        pos = m.end()
        if pos < len(body):
            if body[pos] != ".":
                raise AccessorError(f"cannot parse reference {raw}")
            pos += 1
    return ("ref", Ref(raw, kind, tuple(segments)))


@lru_cache(maxsize=8192)
def parse_expression(expr: str) -> tuple:
    """Parse to a small AST of tuples: lit, ref, or, and, not, if."""
    tokens = _tokenize(expr)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else (None, None)

    def take(value=None):
        nonlocal pos
        tok = peek()
        if tok[0] is None or (value is not None and tok[1] != value):
            raise AccessorError(f"cannot parse (( {expr} )): expected {value or 'a value'}")
        pos += 1
        return tok

    def primary():
        kind, text = peek()
        if kind == "str":
            take()
            return ("lit", text[1:-1])
        if kind == "num":
            take()
            return ("lit", float(text) if "." in text else int(text))
        if kind == "op" and text == "[]":
            take()
            return ("lit", [])
        if kind == "op" and text == "{}":
            take()
            return ("lit", {})
        if kind == "op" and text == "(":
            take()
            node = ternary()
            take(")")
            return node
        if kind == "op" and text == "!":
            take()
            return ("not", primary())
        if kind == "ref":
            take()
            return _make_ref(text)
        raise AccessorError(f"cannot parse (( {expr} ))")

    def conj():
        node = primary()
        while peek() == ("op", "&&"):
            take()
            node = ("and", node, primary())
        return node

    def disj():
        node = conj()
        while peek() == ("op", "||"):
            take()
            node = ("or", node, conj())
        return node

    def ternary():
        cond = disj()
        if peek() == ("op", "?"):
            take()
            a = ternary()
            take(":")
            b = ternary()
            return ("if", cond, a, b)
        return cond

    if not tokens:
        raise AccessorError("empty (( ))")
    node = ternary()
    if pos != len(tokens):
        raise AccessorError(f"cannot parse (( {expr} )): unexpected '{tokens[pos][1]}'")
    return node


# --------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True)
class Scope:
    """What an expression can see.

    ``values`` are the effective values (staged value or default) by
    reference; ``job_facts`` the facts of each job type (see JOB_FACTS);
    ``job`` the job type being rendered (for bare ``prop.value``);
    ``record`` the current collection record with its blueprint.
    """

    template: ProductTemplate
    values: Mapping[str, Any]
    ctx: RenderContext
    job_facts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    job: str | None = None
    record: tuple[Mapping, Mapping] | None = None  # (collection blueprint, record)
    #: the current record's reference, ``<collection reference>.<record guid>``
    record_ref: str | None = None
    depth: int = 0
    variables: frozenset[str] = frozenset()


def _truthy(v: Any) -> bool:
    # Ruby truthiness, with blank strings counting as "not set" like Ops Manager
    # treats blank property values.
    return not (v is None or v is False or (isinstance(v, str) and v.strip() == ""))


def evaluate(expr: str, scope: Scope) -> Any:
    return _eval(parse_expression(expr), scope)


def _eval(node: tuple, scope: Scope) -> Any:
    op = node[0]
    if op == "lit":
        return node[1]
    if op == "ref":
        return _resolve(node[1], scope)
    if op == "or":
        left = _eval(node[1], scope)
        return left if _truthy(left) else _eval(node[2], scope)
    if op == "and":
        left = _eval(node[1], scope)
        return _eval(node[2], scope) if _truthy(left) else left
    if op == "not":
        return not _truthy(_eval(node[1], scope))
    if op == "if":
        return _eval(node[2], scope) if _truthy(_eval(node[1], scope)) else _eval(node[3], scope)
    raise AccessorError(f"bad expression node {op}")


def _stringify(v: Any) -> str:
    if v is None:
        return ""
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def _bosh_variable(name: str, scope: Scope) -> str:
    prefix = scope.ctx.variable_prefix
    if prefix and not name.startswith("/"):
        base = name.split(".", 1)[0]
        if base in scope.variables:
            name = f"{prefix.rstrip('/')}/{name}"
    return f"(({name}))"


def evaluate_text(text: str, scope: Scope) -> Any:
    """Evaluate the expressions in one string (see the module docstring)."""
    if "((" not in text:
        return text
    parts = find_expressions(text)
    meaningful = [p for p in parts if not (p[0] == "text" and not p[1].strip())]
    if len(meaningful) == 1 and meaningful[0][0] == "expr":
        return evaluate(meaningful[0][1], scope)
    out = []
    for kind, s in parts:
        if kind == "text":
            out.append(s)
        elif kind == "bosh":
            out.append(_bosh_variable(s, scope))
        else:
            out.append(_stringify(evaluate(s, scope)))
    return "".join(out)


def evaluate_tree(node: Any, scope: Scope, path: str = "") -> Any:
    """Evaluate every string in a parsed snippet; errors carry the node path."""
    if isinstance(node, str):
        try:
            return evaluate_text(node, scope)
        except AccessorError as e:
            if path and " (at " not in e.message:
                raise AccessorError(f"{e.message} (at {path})") from None
            raise
    if isinstance(node, Mapping):
        return {
            k: evaluate_tree(v, scope, f"{path}.{k}" if path else str(k)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [evaluate_tree(v, scope, f"{path}[{i}]") for i, v in enumerate(node)]
    return node


@lru_cache(maxsize=4096)
def _parse_snippet_cached(text: str) -> Any:
    return parse_yaml(text)


def parse_snippet(snippet: Any) -> Any:
    """A snippet as data: YAML text is parsed, mappings/lists used as they are."""
    if isinstance(snippet, str):
        try:
            return _copy(_parse_snippet_cached(snippet))
        except yaml.YAMLError as e:
            raise AccessorError(f"snippet is not valid YAML: {getattr(e, 'problem', e)}") from None
    return snippet


def _copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy(v) for v in node]
    return node


# -- references --------------------------------------------------------------


def _unknown(ref: Ref, what: str = "unknown accessor") -> AccessorError:
    return AccessorError(f"{what} {ref.raw}")


def _resolve(ref: Ref, scope: Scope) -> Any:
    segs = ref.segments
    if ref.kind == "context":
        return _context_object(ref, scope)
    if ref.kind == "product":
        return _other_product(ref, scope)
    if ref.kind == "dot":
        head = segs[0][0]
        if head == "properties" and len(segs) >= 2:
            return _property_path(ref, scope, ".properties", segs[1:])
        if head in scope.template.job_types:
            return _job_path(ref, scope, head, segs[1:])
        job, rest = _dotted_job(scope.template, segs)
        if job is not None:
            return _job_path(ref, scope, job, rest)
        if len(segs) == 1 and head in ("deployment_name", "network_name"):
            return (
                scope.ctx.deployment_name
                if head == "deployment_name"
                else scope.ctx.network.network
            )
        raise _unknown(ref)
    # local: current_record.x, job property, job fact
    head = segs[0][0]
    if head == "current_record":
        if scope.record is None:
            raise AccessorError(f"{ref.raw} is only valid inside a collection's named manifest")
        return _record_field(ref, scope, segs[1:])
    if scope.job is not None:
        if scope.template.blueprint(f".{scope.job}.{head}") is not None:
            return _property_path(ref, scope, f".{scope.job}", segs)
        if len(segs) == 1 and head in JOB_FACTS:
            return _job_fact(ref, scope, scope.job, head)
    raise _unknown(ref)


def _dotted_job(template: ProductTemplate, segs: tuple) -> tuple[str | None, tuple]:
    """A job type whose name holds dots (``migrate-v1.1-v1.2``) at the head of a reference."""
    for cut in range(2, len(segs)):
        name = ".".join(s[0] for s in segs[:cut])
        if name in template.job_types:
            return name, segs[cut:]
    return None, ()


def _context_object(ref: Ref, scope: Scope) -> Any:
    ctx = scope.ctx
    name = ref.segments[0][0]
    if len(ref.segments) != 2:
        raise _unknown(ref)
    key = ref.segments[1][0]
    if name == "director":
        table, known = ctx.director, KNOWN_DIRECTOR
    elif name == "ops_manager":
        table, known = ctx.ops_manager, KNOWN_OPS_MANAGER
    elif name == "runtime":
        if key not in KNOWN_RUNTIME:
            raise _unknown(ref)
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
        raise _unknown(ref)
    secret = ctx.context_secrets.get(f"${name}.{key}")
    if secret is not None:
        # The director's and this product's own credentials: a reference, never the value.
        return f"(({secret.variable}.{secret.key}))" if ctx.credential_root else secret.value
    if key in table:
        return table[key]
    if key in known:
        return None
    raise _unknown(ref)


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
    return True, _untyped_access(Ref(reference, "dot", ()), other.values[reference], [])


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


def _other_product(ref: Ref, scope: Scope) -> Any:
    segs = ref.segments
    product = segs[0][0]
    rest = segs[1:]
    if product == scope.template.name:
        if [s[0] for s in rest] == ["present?"]:
            return True
        return _resolve(Ref(ref.raw, "dot", rest), scope)
    other = scope.ctx.other_products.get(product)
    if [s[0] for s in rest] == ["present?"]:
        return other is not None
    if other is None:
        raise AccessorError(f"product '{product}' is not installed, needed by {ref.raw}")
    if len(rest) == 1 and rest[0][0] in ("deployment_name", "network_name"):
        return getattr(other, rest[0][0])
    if other.template is not None:
        other_ctx = RenderContext(
            deployment_name=other.deployment_name,
            network=replace(scope.ctx.network, network=other.network_name),
            stemcell=scope.ctx.stemcell,
            vm_types=scope.ctx.vm_types,
            credential_root=scope.ctx.credential_root,
        )
        values = effective_values(other.template, other.values)
        facts = job_facts(other.template, values, other_ctx, [])
        sub = Scope(template=other.template, values=values, ctx=other_ctx, job_facts=facts)
        try:
            return _resolve(Ref(ref.raw, "dot", rest), sub)
        except AccessorError as e:
            # The tile is staged, but its version lacks what is referenced.
            tile = f"'{product}' {other.version}".rstrip()
            raise AccessorError(f"{e.message} (in product {tile})") from None
    # Without the other product's template: look the reference up by its
    # longest known prefix and apply an untyped accessor.
    names = [s[0] for s in rest]
    for cut in range(len(names), 0, -1):
        key = "." + ".".join(names[:cut])
        if key in other.values:
            value = _untyped_access(ref, other.values[key], names[cut:])
            root = scope.ctx.credential_root
            if (
                root
                and isinstance(other.values[key], Mapping)
                and not names[cut:] == ["value_present?"]
            ):
                # A credential-shaped value: hand BOSH the other product's variable.
                name = credential_name(root, other.deployment_name, key)
                if isinstance(value, Mapping):
                    return {k: f"(({name}.{k}))" for k in value}
                rest = names[cut:]
                return f"(({name}.{'value' if rest in ([], ['value']) else rest[0]}))"
            return value
    tile = f"'{product}' {other.version}".rstrip()
    raise AccessorError(f"product {tile} has no property for {ref.raw}")


def _untyped_access(ref: Ref, value: Any, names: list[str]) -> Any:
    if not names or names == ["value"]:
        if isinstance(value, Mapping) and set(value) == {"secret"}:
            return value["secret"]
        return value
    if names == ["value_present?"]:
        return not props.is_empty(value)
    if len(names) == 1 and isinstance(value, Mapping) and names[0] in value:
        return value[names[0]]
    raise _unknown(ref)


def _job_path(ref: Ref, scope: Scope, job: str, rest: tuple) -> Any:
    if not rest:
        raise _unknown(ref)
    head = rest[0][0]
    if scope.template.blueprint(f".{job}.{head}") is not None:
        return _property_path(ref, scope, f".{job}", rest)
    if len(rest) == 1 and head in JOB_FACTS:
        return _job_fact(ref, scope, job, head)
    raise AccessorError(
        f"unknown accessor {ref.raw}: job type '{job}' has no property or fact '{head}'"
    )


def _job_fact(ref: Ref, scope: Scope, job: str, fact: str) -> Any:
    facts = scope.job_facts.get(job)
    if facts is None:
        raise AccessorError(f"{ref.raw}: facts of job type '{job}' are not known")
    return facts.get(fact)


def _property_path(ref: Ref, scope: Scope, prefix: str, segs: tuple) -> Any:
    template = scope.template
    name, arg = segs[0]
    pref = f"{prefix}.{name}"
    bp = template.blueprint(pref)
    if bp is None or arg is not None:
        raise AccessorError(f"unknown property {pref} in {ref.raw}")
    i = 1
    # Walk into selector options: .properties.sel.<option>.<prop>
    while bp.get("type") == "selector" and i + 1 < len(segs):
        child = template.blueprint(f"{pref}.{segs[i][0]}.{segs[i + 1][0]}")
        if child is None:
            if segs[i][0] in [o.get("name") for o in props.SelectorType.options(bp)]:
                raise AccessorError(
                    f"unknown property {pref}.{segs[i][0]}.{segs[i + 1][0]} in {ref.raw}"
                )
            break
        pref = f"{pref}.{segs[i][0]}.{segs[i + 1][0]}"
        bp = child
        i += 2
    value = scope.values.get(pref)
    return _access(ref, scope, pref, bp, value, segs[i:])


def _record_field(ref: Ref, scope: Scope, segs: tuple) -> Any:
    coll_bp, record = scope.record
    if not segs:
        raise _unknown(ref)
    name = segs[0][0]
    fields = {f.get("name"): f for f in props.CollectionType.fields(coll_bp)}
    if name not in fields:
        raise AccessorError(f"unknown field '{name}' in {ref.raw}")
    pref = f"{scope.record_ref}.{name}" if scope.record_ref else f"current_record.{name}"
    return _access(ref, scope, pref, fields[name], record.get(name), segs[1:])


def manifest_value(bp: Mapping, value: Any) -> Any:
    """What ``.value`` gives for a normalised value of this blueprint."""
    t = bp.get("type")
    if value is None:
        return None
    if t == "secret":
        return value.get("secret") if isinstance(value, Mapping) else value
    if t == "selector":
        option = props.SelectorType().find_option(bp, value)
        return value if option is None else props.SelectorType.select_value(option)
    if t == "collection":
        if not isinstance(value, list):
            raise AccessorError("a collection value must be a list of records")
        fields = {f.get("name"): f for f in props.CollectionType.fields(bp)}
        return [
            {k: manifest_value(fields[k], v) if k in fields else v for k, v in rec.items()}
            for rec in value
            if isinstance(rec, Mapping)
        ]
    return value


# -- secrets by reference ------------------------------------------------------


def credential_name(root: str, deployment: str, reference: str) -> str:
    """The variable of a property: ``/opsmgr/<guid>/a/b`` for ``.properties.a.b`` or ``.a.b``."""
    parts = [p for p in reference.split(".") if p]
    if parts[:1] == ["properties"]:
        parts = parts[1:]
    return "/".join([root.rstrip("/"), deployment, *parts])


def _record_id(record: Mapping, index: int) -> str:
    """A collection record's name in variable names: its guid, else its position."""
    guid = record.get("guid")
    return str(guid) if isinstance(guid, str) and re.fullmatch(r"[\w-]+", guid) else str(index)


def _placeholder(scope: Scope, pref: str, key: str) -> str:
    name = credential_name(scope.ctx.credential_root, scope.ctx.deployment_name, pref)
    return f"(({name}.{key}))"


def _is_secret_type(bp: Mapping) -> bool:
    return bp.get("type") in _CRED_KEYS or bp.get("type") == "secret"


def _value(scope: Scope, pref: str, bp: Mapping, value: Any) -> Any:
    """``.value`` of a property: ``manifest_value``, with secrets as references when asked."""
    if not scope.ctx.credential_root or props.is_empty(value):
        return manifest_value(bp, value)
    t = bp.get("type")
    if t == "secret":
        return _placeholder(scope, pref, "value")
    if t in _CRED_KEYS and isinstance(value, Mapping):
        return {k: _placeholder(scope, pref, k) for k in value}
    if t == "collection" and isinstance(value, list):
        fields = {f.get("name"): f for f in props.CollectionType.fields(bp)}
        out = []
        for i, rec in enumerate(value):
            if not isinstance(rec, Mapping):
                continue
            rid = f"{pref}.{_record_id(rec, i)}"
            out.append(
                {
                    k: (_value(scope, f"{rid}.{k}", fields[k], v) if k in fields else v)
                    for k, v in rec.items()
                }
            )
        return out
    return manifest_value(bp, value)


def _credential_entry(pref: str, bp: Mapping, value: Any) -> dict[str, Any] | None:
    """What the variable of one secret property holds: every accessor it answers."""
    if props.is_empty(value):
        return None
    if bp.get("type") == "secret":
        secret = value.get("secret") if isinstance(value, Mapping) else value
        return None if props.is_empty(secret) else {"value": secret}
    if not isinstance(value, Mapping):
        return None
    t = bp.get("type")
    keys = set(_CRED_KEYS[t]) | set(value)
    if t == "salted_credentials":
        keys.add("sha512_hashed_password")
    elif t == "rsa_cert_credentials":
        keys |= {"public_key_pem", "cert_and_private_key_pems"}
    elif t == "rsa_pkey_credentials":
        keys |= {"public_key_openssh", "public_key_fingerprint"}
    out = {}
    for key in sorted(keys):
        try:
            v = _credential_value(Ref(pref, "dot", ()), pref, bp, value, key)
        except AccessorError:
            continue  # the render names a malformed credential; store what is good
        if isinstance(v, str) and v:
            out[key] = v
    return out or None


def credential_values(
    template: ProductTemplate, values: Mapping[str, Any], root: str, deployment: str
) -> dict[str, dict[str, Any]]:
    """Variable name -> value for every secret and credential the product has a value for.

    What the director's variable store must hold for the references a
    render with ``credential_root=root`` writes (see the module docstring):
    ``{"value": s}`` for a secret, the credential's keys and derived
    accessors (``sha512_hashed_password``, ``public_key_openssh`` ...) for
    the others, collection record fields under their record's guid.
    """
    out: dict[str, dict[str, Any]] = {}
    effective = effective_values(template, values)
    for pref in template.iter_property_references():
        bp, ref = pref.blueprint, pref.reference
        value = effective.get(ref)
        if bp.get("type") == "collection" and isinstance(value, list):
            fields = [f for f in props.CollectionType.fields(bp) if _is_secret_type(f)]
            for i, rec in enumerate(value):
                if not isinstance(rec, Mapping):
                    continue
                for f in fields:
                    fref = f"{ref}.{_record_id(rec, i)}.{f.get('name')}"
                    entry = _credential_entry(fref, f, rec.get(f.get("name")))
                    if entry:
                        out[credential_name(root, deployment, fref)] = entry
        elif _is_secret_type(bp):
            entry = _credential_entry(ref, bp, value)
            if entry:
                out[credential_name(root, deployment, ref)] = entry
    return out


_CRED_KEYS = {
    "simple_credentials": ("identity", "password"),
    "salted_credentials": ("identity", "password", "salt"),
    "rsa_cert_credentials": ("cert_pem", "private_key_pem"),
    "rsa_pkey_credentials": ("private_key_pem", "public_key_pem"),
}


def _access(ref: Ref, scope: Scope, pref: str, bp: Mapping, value: Any, rest: tuple) -> Any:
    t = bp.get("type")
    if not rest:
        # A bare reference reads as its value (the tile-generator writes
        # ``(( .properties.timeout ))`` in update blocks).
        return _value(scope, pref, bp, value)
    acc, arg = rest[0]
    if acc == "value_present?":
        return not props.is_empty(value)
    if acc == "value" and len(rest) == 1:
        return _value(scope, pref, bp, value)
    if t == "selector":
        option = props.SelectorType().find_option(bp, value)
        if acc == "selected_option":
            return _option_access(ref, scope, pref, bp, option, rest[1:])
        if acc == "parsed_manifest" and arg is not None and len(rest) == 1:
            return _option_access(ref, scope, pref, bp, option, rest)
        raise _unknown(ref)
    if t == "collection" and acc == "parsed_manifest" and arg is not None and len(rest) == 1:
        return _collection_manifest(ref, scope, pref, bp, value or [], arg)
    if len(rest) != 1:
        raise _unknown(ref)
    if acc in ("parsed_strings",) and t == "string_list":
        return [] if value is None else csv_items(value)
    if acc == "parsed_network_addresses" and t == "network_address_list":
        return [] if value is None else csv_items(value)
    if acc == "parsed_ip_ranges" and t == "ip_ranges":
        try:
            return [] if value is None else props.parse_ip_ranges(value)
        except props.PropertyError as e:
            raise AccessorError(f"{pref}: {e.message}") from None
    if acc == "uuid" and t == "uuid":
        return value
    if t == "stemcell_selector" and acc in ("os", "version", "assigned?"):
        return (value is not None) if acc == "assigned?" else None
    if t in _CRED_KEYS or t == "secret":
        return _credential_access(ref, scope, pref, bp, value, acc)
    raise AccessorError(f"unknown accessor {ref.raw} ('{acc}' on a {t})")


def _credential_access(ref: Ref, scope: Scope, pref: str, bp: Mapping, value: Any, acc: str) -> Any:
    """One accessor of a credential: its value, or the variable holding it (see the docstring).

    The value is computed either way, so a malformed stored credential is a
    render error naming the property, not a deploy that cannot find a key.
    """
    in_record = pref.startswith("current_record.") or (
        scope.record_ref is not None and pref.startswith(f"{scope.record_ref}.")
    )
    result = _credential_value(ref, pref, bp, value, acc, in_record=in_record)
    if result is None or not scope.ctx.credential_root:
        return result
    return _placeholder(scope, pref, "value" if acc == "secret" else acc)


def _credential_value(
    ref: Ref, pref: str, bp: Mapping, value: Any, acc: str, *, in_record: bool = False
) -> Any:
    t = bp.get("type")
    allowed = set(_CRED_KEYS.get(t, ()))
    if t == "secret":
        allowed = {"secret"}
    elif t == "salted_credentials":
        allowed |= {"sha512_hashed_password"}
    elif t == "rsa_cert_credentials":
        allowed |= {"public_key_pem", "cert_and_private_key_pems"}
    elif t == "rsa_pkey_credentials":
        allowed |= {"public_key_openssh", "public_key_fingerprint"}
    if acc not in allowed:
        raise AccessorError(f"unknown accessor {ref.raw} ('{acc}' on a {t})")
    if not props.is_empty(value) and not isinstance(value, Mapping) and t != "secret":
        raise AccessorError(f"{pref} holds a value of the wrong shape for a {t}")
    if props.is_empty(value):
        if props.is_generated(bp, in_collection=in_record):
            raise AccessorError(
                f"{pref} has no generated value yet (generate credentials before rendering)"
            )
        return None
    if t == "secret":
        return value.get("secret") if isinstance(value, Mapping) else value

    def field(key: str) -> str:
        # Staged values were validated when they were stored, but a tile
        # upgrade or an old row can leave any shape behind: name the field.
        v = value.get(key)
        if not isinstance(v, str) or not v:
            raise AccessorError(f"{pref}: {key} is missing or not a string, needed by {ref.raw}")
        return v

    if acc in value:
        return field(acc)
    if acc == "sha512_hashed_password":
        from tiles.credentials import CredentialError, sha512_crypt

        try:
            return sha512_crypt(field("password"), field("salt"))
        except CredentialError as e:
            raise AccessorError(f"{pref}: {e}") from None
    if acc == "cert_and_private_key_pems":
        cert = field("cert_pem")
        return cert + ("" if cert.endswith("\n") else "\n") + field("private_key_pem")
    try:
        return _public_key(field("private_key_pem"), acc)
    except (ValueError, TypeError):
        raise AccessorError(
            f"{pref}: private_key_pem is not an unencrypted PEM private key, needed by {ref.raw}"
        ) from None


@lru_cache(maxsize=256)
def _public_key(private_key_pem: str, form: str) -> str:
    from cryptography.hazmat.primitives import serialization

    # The key was checked when it was stored; skip the slow RSA self-check.
    key = serialization.load_pem_private_key(
        private_key_pem.encode(), None, unsafe_skip_rsa_key_validation=True
    ).public_key()
    if form == "public_key_pem":
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    openssh = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    if form == "public_key_openssh":
        return openssh.decode()
    # The classic MD5 fingerprint of the SSH key blob (ssh-keygen -E md5).
    digest = hashlib.md5(base64.b64decode(openssh.split()[1]), usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _option_access(ref: Ref, scope: Scope, pref: str, bp: Mapping, option, rest: tuple) -> Any:
    if option is None:
        raise AccessorError(f"{pref} has no option selected, needed by {ref.raw}")
    if not rest:
        return props.SelectorType.select_value(option)
    acc, arg = rest[0]
    if len(rest) != 1:
        raise _unknown(ref)
    if acc in ("value", "select_value"):
        return props.SelectorType.select_value(option)
    if acc == "name":
        return option.get("name")
    if acc == "label":
        return option.get("label")
    if acc == "parsed_manifest" and arg is not None:
        for nm in option.get("named_manifests") or []:
            if isinstance(nm, Mapping) and nm.get("name") == arg:
                return _render_named(ref, scope, nm.get("manifest"))
        raise AccessorError(
            f"option '{option.get('name')}' of {pref} has no named manifest '{arg}', needed by {ref.raw}"
        )
    raise _unknown(ref)


def _collection_manifest(ref: Ref, scope: Scope, pref: str, bp: Mapping, records: list, name: str):
    snippet = None
    for nm in bp.get("named_manifests") or []:
        if isinstance(nm, Mapping) and nm.get("name") == name:
            snippet = nm.get("manifest")
            break
    else:
        raise AccessorError(f"{pref} has no named manifest '{name}', needed by {ref.raw}")
    out: list = []
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            continue
        rid = f"{pref}.{_record_id(record, i)}"
        rendered = _render_named(ref, replace(scope, record=(bp, record), record_ref=rid), snippet)
        # A snippet that is itself a list item contributes its items.
        if isinstance(rendered, list):
            out.extend(rendered)
        elif rendered is not None:
            out.append(rendered)
    return out


def _render_named(ref: Ref, scope: Scope, snippet: Any) -> Any:
    if scope.depth > 20:
        raise AccessorError(f"named manifests nest too deep at {ref.raw}")
    data = parse_snippet(snippet)
    return evaluate_tree(data, replace(scope, depth=scope.depth + 1))


def effective_values(template: ProductTemplate, values: Mapping[str, Any]) -> dict[str, Any]:
    """Staged values with defaults filled in, for every reference of the template."""
    out: dict[str, Any] = {}
    for pref in template.iter_property_references():
        out[pref.reference] = props.effective_value(pref.blueprint, values, pref.reference)
    return out
