"""Evaluating expressions: text and snippet trees, and resolving references.

``evaluate_text()`` and ``evaluate_tree()`` walk a snippet; ``_resolve``
dispatches a reference to the product's properties (``.properties.x``,
``.<job>.x``), job facts, the current collection record, the context
objects (``tiles.accessors.context``), another product (``..name.x``) or a
credential's accessors (``tiles.accessors.credential``). Selector options'
and collections' named manifests are rendered here, recursively.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Any

import yaml

from tiles import properties as props
from tiles.accessors.context import context_object, untyped_access
from tiles.accessors.credential import CREDENTIAL_KEYS, credential_access, property_value
from tiles.accessors.scope import (
    JOB_FACTS,
    Scope,
    credential_name,
    effective_values,
    record_id,
    unknown_accessor,
)
from tiles.accessors.syntax import AccessorError, Ref, find_expressions, parse_expression
from tiles.properties.scalar import csv_items
from tiles.render_context import RenderContext, job_facts
from tiles.template import ProductTemplate, parse_yaml


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


def _resolve(ref: Ref, scope: Scope) -> Any:
    segs = ref.segments
    if ref.kind == "context":
        return context_object(ref, scope)
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
        raise unknown_accessor(ref)
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
    raise unknown_accessor(ref)


def _dotted_job(template: ProductTemplate, segs: tuple) -> tuple[str | None, tuple]:
    """A job type whose name holds dots (``migrate-v1.1-v1.2``) at the head of a reference."""
    for cut in range(2, len(segs)):
        name = ".".join(s[0] for s in segs[:cut])
        if name in template.job_types:
            return name, segs[cut:]
    return None, ()


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
            value = untyped_access(ref, other.values[key], names[cut:])
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


def _job_path(ref: Ref, scope: Scope, job: str, rest: tuple) -> Any:
    if not rest:
        raise unknown_accessor(ref)
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
        raise unknown_accessor(ref)
    name = segs[0][0]
    fields = {f.get("name"): f for f in props.CollectionType.fields(coll_bp)}
    if name not in fields:
        raise AccessorError(f"unknown field '{name}' in {ref.raw}")
    pref = f"{scope.record_ref}.{name}" if scope.record_ref else f"current_record.{name}"
    return _access(ref, scope, pref, fields[name], record.get(name), segs[1:])


def _access(ref: Ref, scope: Scope, pref: str, bp: Mapping, value: Any, rest: tuple) -> Any:
    t = bp.get("type")
    if not rest:
        # A bare reference reads as its value (the tile-generator writes
        # ``(( .properties.timeout ))`` in update blocks).
        return property_value(scope, pref, bp, value)
    acc, arg = rest[0]
    if acc == "value_present?":
        return not props.is_empty(value)
    if acc == "value" and len(rest) == 1:
        return property_value(scope, pref, bp, value)
    if t == "selector":
        option = props.SelectorType().find_option(bp, value)
        if acc == "selected_option":
            return _option_access(ref, scope, pref, bp, option, rest[1:])
        if acc == "parsed_manifest" and arg is not None and len(rest) == 1:
            return _option_access(ref, scope, pref, bp, option, rest)
        raise unknown_accessor(ref)
    if t == "collection" and acc == "parsed_manifest" and arg is not None and len(rest) == 1:
        return _collection_manifest(ref, scope, pref, bp, value or [], arg)
    if len(rest) != 1:
        raise unknown_accessor(ref)
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
    if t in CREDENTIAL_KEYS or t == "secret":
        return credential_access(ref, scope, pref, bp, value, acc)
    raise AccessorError(f"unknown accessor {ref.raw} ('{acc}' on a {t})")


def _option_access(ref: Ref, scope: Scope, pref: str, bp: Mapping, option, rest: tuple) -> Any:
    if option is None:
        raise AccessorError(f"{pref} has no option selected, needed by {ref.raw}")
    if not rest:
        return props.SelectorType.select_value(option)
    acc, arg = rest[0]
    if len(rest) != 1:
        raise unknown_accessor(ref)
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
    raise unknown_accessor(ref)


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
        rid = f"{pref}.{record_id(record, i)}"
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
