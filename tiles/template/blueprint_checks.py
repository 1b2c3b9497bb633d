"""Checks of ``property_blueprints``: names, types, options, defaults, constraints.

A mixin of ``Checker`` (``tiles.template.checks``), whose node helpers
(``err``, ``warn``, ``list_of``, ``mapping``, ``string``, ``boolean``,
``integer``, ``yaml_snippet``) it uses. Blueprint types are judged by
``tiles.properties``, the one place that knows them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tiles import properties as props

PROP_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")


class BlueprintChecks:
    """The property blueprint checks of a product template."""

    def blueprints(self, node: Any, path: str, *, in_collection: bool = False) -> None:
        seen: set[str] = set()
        for i, bp in enumerate(self.list_of(node, path)):
            p = f"{path}/{i}"
            if not self.mapping(bp, p):
                continue
            if self.string(bp, "name", p):
                if not PROP_NAME_RE.match(bp["name"]):
                    self.err(
                        f"{p}/name", f"'{bp['name']}' may only hold letters, digits, '_' and '-'"
                    )
                if bp["name"] in seen:
                    self.err(f"{p}/name", f"property '{bp['name']}' is defined twice")
                seen.add(bp["name"])
            self.blueprint(bp, p, in_collection=in_collection)

    def blueprint(self, bp: Mapping, p: str, *, in_collection: bool) -> None:
        t = bp.get("type")
        if t is None:
            self.err(f"{p}/type", "is required")
            return
        if not isinstance(t, str) or t not in props.TYPES:
            self.err(f"{p}/type", f"unknown type '{t}'")
            return
        for key in ("configurable", "optional", "freeze_on_deploy", "unique"):
            self.boolean(bp, key, p)
        if t in ("dropdown_select", "multi_select_options"):
            options = self.list_of(bp.get("options"), f"{p}/options")
            if not options:
                self.err(f"{p}/options", f"a {t} needs at least one option")
            names = set()
            for j, opt in enumerate(options):
                if self.mapping(opt, f"{p}/options/{j}"):
                    if isinstance(opt.get("name"), int | float | bool):
                        opt["name"] = str(opt["name"])
                    if self.string(opt, "name", f"{p}/options/{j}"):
                        if opt["name"] in names:
                            self.err(
                                f"{p}/options/{j}/name", f"option '{opt['name']}' is listed twice"
                            )
                        names.add(opt["name"])
        if t == "selector":
            options = self.list_of(bp.get("option_templates"), f"{p}/option_templates")
            if not options:
                self.err(f"{p}/option_templates", "a selector needs at least one option")
            names, values = set(), set()
            for j, opt in enumerate(options):
                op = f"{p}/option_templates/{j}"
                if not self.mapping(opt, op):
                    continue
                if self.string(opt, "name", op):
                    if opt["name"] in names:
                        self.err(f"{op}/name", f"option '{opt['name']}' is defined twice")
                    names.add(opt["name"])
                sv = props.SelectorType.select_value(opt)
                if sv in values:
                    self.err(f"{op}/select_value", f"select_value '{sv}' is used twice")
                values.add(sv)
                self.blueprints(opt.get("property_blueprints"), f"{op}/property_blueprints")
                self.named_manifests(opt, op)
        if t == "collection":
            fields = self.list_of(bp.get("property_blueprints"), f"{p}/property_blueprints")
            if not fields:
                self.err(f"{p}/property_blueprints", "a collection needs at least one field")
            self.blueprints(fields, f"{p}/property_blueprints", in_collection=True)
            self.named_manifests(bp, p)
        self.constraints(bp, t, p)
        if t in ("vm_type_dropdown", "disk_type_dropdown"):
            self.resource_definitions(bp.get("resource_definitions"), f"{p}/resource_definitions")
        self.lenient_default(bp, t, p)
        # Credential defaults are generation hints ({identity: vcap},
        # {domains: [...]}); every other default must fit its type.
        if bp.get("default") is not None and not props.get_type(t).credential:
            try:
                props.validate(bp, bp["default"], check_constraints=False)
            except props.PropertyError as e:
                self.err(f"{p}/default", e.message)
        if t == "rsa_cert_credentials" and isinstance(bp.get("default"), Mapping):
            domains = bp["default"].get("domains")
            if domains is not None and not (
                isinstance(domains, list) and all(isinstance(x, str) for x in domains)
            ):
                self.err(f"{p}/default/domains", "must be a list of domain names")

    def lenient_default(self, bp: Mapping, t: str, p: str) -> None:
        """Defaults shipped tiles carry that Ops Manager imports: fixed up, with a warning.

        A ``dropdown_select`` default that is not an option is dropped (the
        operator chooses one); option names a ``multi_select_options`` default
        lists but does not declare are dropped; fields of a ``collection``
        default its ``property_blueprints`` do not declare are dropped from
        each record. Any other default that does not fit its type stays an
        error.
        """
        default = bp.get("default")
        if default is None or not isinstance(bp, dict):
            return
        if t in ("dropdown_select", "multi_select_options"):
            names = props.DropdownSelectType.option_names(bp)
            if t == "dropdown_select" and isinstance(default, str | int | float | bool):
                if str(default) not in names:
                    self.warn(
                        f"{p}/default",
                        f"'{default}' is not one of the options ({', '.join(names)}): "
                        "ignored, the operator chooses one",
                    )
                    bp["default"] = None
            elif t == "multi_select_options" and isinstance(default, list):
                unknown = [str(x) for x in default if str(x) not in names]
                if unknown:
                    self.warn(
                        f"{p}/default",
                        f"{', '.join(repr(x) for x in unknown)} not among the options "
                        f"({', '.join(names)}): ignored",
                    )
                    bp["default"] = [x for x in default if str(x) in names]
        elif t == "collection":
            records = [default] if isinstance(default, Mapping) else default
            if not isinstance(records, list):
                return
            fields = {f.get("name") for f in props.CollectionType.fields(bp)} | {"guid"}
            cleaned = []
            for i, record in enumerate(records):
                if isinstance(record, Mapping):
                    extra = [k for k in record if k not in fields]
                    if extra:
                        self.warn(
                            f"{p}/default/{i}",
                            f"field{'s' if len(extra) > 1 else ''} {', '.join(map(str, extra))} "
                            "not declared in its property_blueprints: ignored",
                        )
                        record = {k: v for k, v in record.items() if k in fields}
                cleaned.append(record)
            bp["default"] = cleaned

    def named_manifests(self, node: Mapping, p: str) -> None:
        for k, nm in enumerate(self.list_of(node.get("named_manifests"), f"{p}/named_manifests")):
            np = f"{p}/named_manifests/{k}"
            if self.mapping(nm, np):
                self.string(nm, "name", np)
                self.yaml_snippet(nm, "manifest", np)

    def constraints(self, bp: Mapping, t: str, p: str) -> None:
        c = bp.get("constraints")
        if c is None:
            return
        if t in ("integer", "port"):
            if not self.mapping(c, f"{p}/constraints"):
                return
            for key in ("min", "max", "zero_or_min", "modulo"):
                if key in c and (isinstance(c[key], bool) or not isinstance(c[key], int)):
                    self.err(f"{p}/constraints/{key}", "must be an integer")
            if (
                isinstance(c.get("min"), int)
                and isinstance(c.get("max"), int)
                and c["min"] > c["max"]
            ):
                self.err(f"{p}/constraints", "min is greater than max")
            return
        if t in ("string", "text", "secret"):
            items = [c] if isinstance(c, Mapping) else c
            if not isinstance(items, list):
                self.err(f"{p}/constraints", "must be a list of {must_match_regex, error_message}")
                return
            for j, item in enumerate(items):
                cp = f"{p}/constraints/{j}"
                if not self.mapping(item, cp):
                    continue
                if "must_match_regex" in item:
                    try:
                        props.ruby_regex(str(item["must_match_regex"]))
                    except re.error as e:
                        self.err(f"{cp}/must_match_regex", f"invalid regular expression: {e}")
