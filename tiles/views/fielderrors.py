"""Service error paths put on the form fields they name, as sentences: one place.

The services name what is wrong with an API path
(``networks/deploy-net/subnets/0/cidr``, ``availability_zones/az1/clusters/0/cluster``,
``iaas_configuration/vcenter_password``) and a message that reads after the
field's name (``is required``, ``'10.0.0.0/33' is not a network ...``).
A page shows each message under its field, as a sentence that starts with
the field's label (``CIDR '10.0.0.0/33' is not a network in CIDR form.``).
What names no field of the form (a pane-wide error) goes above the form,
with the path said in words (``Network infra, subnet 1: ...``).

- ``sentence(label, message)``: one message as a sentence;
- ``describe(path)``: a path in words;
- ``attach_rows(errors, rows, kind)``: the Create Availability Zones and
  Create Networks panes; each row dict (as the page re-renders it) gets
  ``errors`` by field, and the rest is returned for the top of the form;
- ``form_errors(form, errors, prefix)``: a Django form (vCenter Config,
  Director Config): on the field named by the path's last part;
- ``field_sentences(form)``: a bound Django form's field errors (a tile
  pane's, Resource Config's) rewritten as sentences led by the field's
  label (``Queue name must be unique: row 1 already uses "mail".``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

#: Field names as the panes label them.
LABELS = {
    "name": "Name",
    "clusters": "Clusters",
    "cluster": "Cluster",
    "res_pool": "Resource pool",
    "host_group": "Host group",
    "drs_rule": "VM-Host affinity rule",
    "subnets": "Subnets",
    "iaas_identifier": "vSphere network name",
    "cidr": "CIDR",
    "gateway": "Gateway",
    "dns": "DNS",
    "reserved_ip_ranges": "Reserved IP ranges",
    "availability_zone_names": "Availability zones",
    "icmp_checks_enabled": "ICMP checks",
    "vcenter_host": "vCenter host",
    "vcenter_username": "vCenter username",
    "vcenter_password": "vCenter password",
    "vcenter_ca_certificate": "vCenter CA certificate",
    "datacenter": "Datacenter name",
    "ephemeral_datastores_string": "Ephemeral datastore names",
    "persistent_datastores_string": "Persistent datastore names",
    "product[file]": "The product file",
    "stemcell[file]": "The stemcell file",
}

#: Messages that read after the field's name.
_PREDICATE = re.compile(r"^(is|are|must|may|cannot|should|has|does|overlaps)\b")


def sentence(label: str, message: str) -> str:
    """``("CIDR", "is required")`` -> ``"CIDR is required."``; a whole sentence stays one.

    A message about the value (``'x' is not ...``, ``10.0.1.1 is not ...``)
    follows the label; another fragment gets the label with a colon."""
    text = str(message).strip()
    if label and (_PREDICATE.match(text) or text[:1].isdigit() or text[:1] in "'\"“"):
        text = f"{label} {text}"  # "Gateway 10.0.1.1 is not inside 10.0.0.0/24"
    elif label and text[:1].islower():
        text = f"{label}: {text}"
    elif text[:1].islower():
        text = text[0].upper() + text[1:]
    if text and text[-1] not in ".!?":
        text += "."
    return text


def label_of(key: str) -> str:
    return LABELS.get(key, key.replace("_", " ").capitalize())


def describe(path: str) -> str:
    """``networks/infra/subnets/0/cidr`` -> ``Network infra, subnet 1, CIDR``."""
    parts = [p for p in str(path).split("/") if p]
    words: list[str] = []
    i = 0
    nouns = {
        "availability_zones": "Availability zone",
        "availability_zone": "Availability zone",
        "networks": "Network",
        "clusters": "cluster",
        "subnets": "subnet",
        "vm_types": "VM type",
        "errands": "Errand",
    }
    while i < len(parts):
        part = parts[i]
        nxt = parts[i + 1] if i + 1 < len(parts) else None
        if part in nouns and nxt is not None:
            ref = str(int(nxt) + 1) if nxt.isdigit() else nxt
            words.append(f"{nouns[part]} {ref}")
            i += 2
            continue
        if part not in ("iaas_configuration", "director_configuration", "network_and_az"):
            words.append(label_of(part) if not words else label_of(part).lower())
        i += 1
    return ", ".join(words) or "This form"


def top_lines(errors: Mapping[str, Iterable[str]]) -> list[str]:
    """Errors for the top of a form: the path in words, then the message."""
    out = []
    for key, msgs in errors.items():
        for m in msgs if isinstance(msgs, list | tuple) else [msgs]:
            if not key or key in ("base", "__all__"):
                out.append(sentence("", m))
            else:
                out.append(sentence(describe(key), m))
    return out


def _index(rows: list[Mapping], key: str) -> int | None:
    """A row by its position (``0``) or its name (``infra``), as the service names it."""
    if key.isdigit() and int(key) < len(rows):
        return int(key)
    for i, row in enumerate(rows):
        if row.get("name") == key:
            return i
    return None


#: ``kind`` -> (top segment, child list, child segment).
ROWS = {
    "availability_zones": ("availability_zones", "clusters", "clusters"),
    "networks": ("networks", "subnets", "subnets"),
}

#: Service field -> the row field under which the page shows it.
ROW_FIELD = {"availability_zone_names": "availability_zone_names", "drs_rule": "host_group"}


def attach_rows(
    errors: Mapping[str, list[str]], rows: list[MutableMapping[str, Any]], kind: str
) -> list[str]:
    """Put ``errors`` on ``rows`` (``row["errors"][field]``, ``child["errors"][field]``).

    Returns the lines for the top of the form (what names no row field)."""
    top, child_key, child_seg = ROWS[kind]
    left: dict[str, list[str]] = {}
    for path, msgs in errors.items():
        parts = path.split("/")
        target = field = None
        if len(parts) >= 2 and parts[0] in (top, top.rstrip("s")):
            i = _index(rows, parts[1])
            if i is not None:
                row = rows[i]
                rest = parts[2:]
                if not rest:  # the row as a whole ("is assigned to ...")
                    target, field = row, "name"
                elif len(rest) == 1:
                    target, field = row, rest[0]
                elif rest[0] == child_seg and rest[1].isdigit():
                    children = row.get(child_key) or []
                    j = int(rest[1])
                    if j < len(children):
                        target = children[j]
                        field = rest[2] if len(rest) > 2 else "name"
        if target is None or field is None:
            left[path] = list(msgs)
            continue
        field = ROW_FIELD.get(field, field)
        bucket = target.setdefault("errors", {}).setdefault(field, [])
        bucket.extend(sentence(label_of(field), m) for m in msgs)
    return top_lines(left)


def form_errors(form, errors: Mapping[str, list[str]]) -> None:
    """A Django form: each error on the field its path ends with, else on the form."""
    for key, msgs in errors.items():
        field = key.rpartition("/")[2]
        for m in msgs:
            if field in form.fields:
                form.add_error(field, sentence(str(form.fields[field].label or label_of(field)), m))
            else:
                form.add_error(None, sentence(describe(key), m))


def field_sentences(form, labels: Mapping[str, str] | None = None) -> None:
    """Each field error of a bound, validated Django form as a sentence after its label.

    ``labels`` overrides a field's label (``""``: the message says it alone).
    Django's own messages (``Enter a whole number.``) are sentences already and stay."""
    errors = form.errors
    for name in list(errors):
        if name == "__all__" or name not in form.fields:
            continue
        if labels is not None and name in labels:
            label = labels[name]
        else:
            label = str(form.fields[name].label or label_of(name))
        lines = []
        for msg in errors[name]:
            text = str(msg)
            if text.startswith("value ") and _PREDICATE.match(text[6:]):
                text = text[6:]  # "value is required" -> "Port is required."
            lines.append(sentence(label, text))
        errors[name] = form.error_class(lines)
