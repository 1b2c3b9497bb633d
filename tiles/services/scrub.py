"""Secrets in clear left by older consoles: found, and replaced by references.

Before tile secrets reached the director by reference (``tiles.accessors``),
Apply Changes rendered tile manifests with the values written in, and they
were kept wherever a manifest is kept: ``director_deployment.manifest_text``
and ``.manifest``, each instance's ``spec_json`` (the apply spec's job
properties), the ``update_deployment`` task's ``args``, the tile's
``deployed_manifest`` (encrypted, but what Review Pending Changes diffs
against), and whatever a task logged (events, results, the debug and CPI
logs under ``TASK_LOG_DIR``). ``scrub_secrets`` rewrites all of it the way
the console writes it now. The ``tiles`` migration ``0006_scrub_secrets``
and ``manage.py scrub_secrets`` both run it.

What counts as a secret: every secret and credential value a tile has (as
staged, as deployed, as any Apply Changes snapshot recorded it; the
salted password's hash and a certificate's key-and-cert text included),
every value of the director's variable store that is not public (a
certificate, a CA, a public key, a user name are not), the vCenter
password (the tile's, the deployed one and any cpi-config's) and the
secret part of a director setting (``DirectorAttribute.secret``: the health
monitor's SMTP password), the last two replaced by ``((redacted))``. Values
shorter than ``MIN_SECRET_LENGTH`` (6) characters are not searched for
outside a credential's own place in a manifest: ``admin`` or ``ops`` would
match words everywhere, and such a value protects nothing.

How each place is rewritten:

- A tile deployment's manifests (the director's two, its tasks', the
  tile's ``deployed_manifest``) and its instances' job properties: the
  deployed configuration is rendered again with references; wherever the
  stored value is what the reference resolves to, the reference goes in
  its place, exactly as the renderer writes it (identities and
  certificates included), so the next Review Pending Changes shows no
  change. A secret still left (a render that failed, a manifest of a
  deleted tile) becomes the reference that holds it, or ``((redacted))``
  where none does (the vCenter password).
- Every other text or JSON column of every model (events, task results,
  installation messages...): each secret becomes its reference or
  ``((redacted))``. Encrypted columns keep their values (that is what they
  are for), and so do the columns operators configure (a tile's template,
  staged values, the Director tile's settings).
- The variable store gets the deployed values under the references' names
  where it holds none (an older console never wrote them), so the director
  resolves the rewritten manifests (errands, the next deploy) to what runs.
- Task log files are rewritten in place atomically (a new file renamed over
  the old), after the rows' transaction has committed.

Rows change in one transaction; a second run changes nothing. The report
names tables, rows, columns, files and variable names, and counts; never
a value.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.apps import apps as django_apps
from django.conf import settings
from django.db import connection, models, transaction

from director.manifest.yaml import dump_yaml
from director.models import DirectorAttribute
from opsconsole.crypto import EncryptedJSONField, EncryptedTextField
from opsconsole.redaction import REDACTED, is_secret_key, secret_values
from tiles.accessors import CREDENTIAL_ROOT, credential_values
from tiles.manifest import render_manifest
from tiles.models import StagedProduct
from tiles.template import TemplateError, load_product_template

from .rendering import manifest_yaml, render_context

__all__ = [
    "MIN_SECRET_LENGTH",
    "Change",
    "ScrubReport",
    "Replacer",
    "Secrets",
    "file_lines",
    "collect_secrets",
    "scrub_secrets",
    "scrub_files",
]

#: Shorter values are not searched for (see the module docstring).
MIN_SECRET_LENGTH = 6

#: Keys of credential values that are not secret.
PUBLIC_KEYS = frozenset(
    {
        "identity",
        "username",
        "guid",
        "cert_pem",
        "certificate",
        "ca",
        "public_key",
        "public_key_pem",
        "public_key_openssh",
        "public_key_fingerprint",
    }
)

#: Columns operators configure: inputs, never written from a rendered manifest.
CONFIG_COLUMNS = frozenset(
    {
        "tiles.Product.metadata",
        "tiles.StagedProduct.values",
        "tiles.StagedProduct.edits",
        "tiles.DirectorConfig.*",
        "auth.User.password",
    }
)

_REFERENCE = re.compile(r"\(\((/[^()\s]+?)\)\)")


@dataclass(frozen=True)
class Change:
    """Values replaced in one place: a row's column, or a file (``table`` is ``file``)."""

    table: str
    row: str
    column: str
    values: int

    def __str__(self) -> str:
        where = f"{self.table} row {self.row} {self.column}" if self.column else self.row
        return f"{where}: {self.values} value(s) replaced"


@dataclass
class ScrubReport:
    rows: list[Change] = field(default_factory=list)
    files: list[Change] = field(default_factory=list)
    #: Tile deployments whose configuration could not be rendered again (by value only).
    unrendered: list[str] = field(default_factory=list)
    #: Variable names written to the store (the director's credentials).
    stored: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.rows or self.files or self.stored)

    def lines(self, *, files: bool = True) -> list[str]:
        """What changed, one line each; ``files=False`` leaves the task logs out."""
        out = [str(c) for c in self.rows]
        out += [f"director_credential: stored {name}" for name in self.stored]
        return out + file_lines(self.files) if files else out


def file_lines(changes: list[Change]) -> list[str]:
    return [f"file {c.row}: {c.values} value(s) replaced" for c in changes]


@dataclass
class Secrets:
    """What to look for and what to put in its place."""

    #: Secret value -> its reference ``((name.key))``, or ``((redacted))``.
    replacements: dict[str, str] = field(default_factory=dict)
    #: Tile deployment -> variable name -> value, as deployed (``credential_values``).
    deployed: dict[str, dict[str, dict]] = field(default_factory=dict)

    def add(self, value: Any, replacement: str = REDACTED) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
            return
        if value == replacement or self.replacements.get(value, REDACTED) != REDACTED:
            return  # the first reference found stays (deployed before staged before snapshots)
        self.replacements[value] = replacement

    def add_credentials(self, credentials: Mapping[str, Mapping]) -> None:
        for name, entry in credentials.items():
            self.add_variable(name, entry)

    def add_variable(self, name: str, value: Any) -> None:
        """A value of the variable store: its secret parts, by their references."""
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key not in PUBLIC_KEYS and isinstance(item, str):
                    self.add(item, f"(({name}.{key}))")
        elif isinstance(value, str):
            self.add(value, f"(({name}))")

    def replacer(self, replacement: str | None = None) -> Replacer:
        """Each secret -> its replacement (or ``replacement`` for all of them)."""
        return Replacer((secret, replacement or ref) for secret, ref in self.replacements.items())


# --------------------------------------------------------------------------- collecting


def _walk_secret_strings(value: Any, found: Callable[[str], None], key: str | None = None):
    if isinstance(value, str):
        if key not in PUBLIC_KEYS:
            found(value)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _walk_secret_strings(v, found, k)
    elif isinstance(value, list):
        for v in value:
            _walk_secret_strings(v, found, key)


def _template(product, cache: dict):
    if product is None:
        return None
    if product.pk not in cache:
        try:
            cache[product.pk] = load_product_template(product.metadata, source=product.filename)
        except TemplateError:
            cache[product.pk] = None
    return cache[product.pk]


def _credentials(template, state: Mapping | None, guid: str) -> dict[str, dict]:
    if template is None or not state:
        return {}
    values = {**(state.get("values") or {}), **(state.get("secrets") or {})}
    try:
        return credential_values(template, values, CREDENTIAL_ROOT, guid)
    except Exception:  # noqa: BLE001 - a malformed old value: its raw strings are still added
        return {}


def _add_state(secrets: Secrets, template, state: Mapping | None, guid: str) -> dict[str, dict]:
    credentials = _credentials(template, state, guid)
    secrets.add_credentials(credentials)
    # What no reference holds (a property a later template dropped) is still hidden.
    _walk_secret_strings((state or {}).get("secrets") or {}, secrets.add)
    return credentials


def _add_config_text(secrets: Secrets, text: Any) -> None:
    if not isinstance(text, str) or not text:
        return
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return
    for value in secret_values(doc):
        secrets.add(value)


def collect_secrets(apps) -> Secrets:
    """Every known secret, decrypted from the encrypted columns (see the module docstring)."""
    Product = apps.get_model("tiles", "Product")
    StagedProduct = apps.get_model("tiles", "StagedProduct")
    Installation = apps.get_model("tiles", "Installation")
    DirectorConfig = apps.get_model("tiles", "DirectorConfig")
    Credential = apps.get_model("director", "Credential")
    Variable = apps.get_model("director", "Variable")
    Config = apps.get_model("director", "Config")

    secrets = Secrets()
    templates: dict = {}
    staged = list(StagedProduct.objects.select_related("product", "deployed_product"))
    for sp in staged:  # as deployed first: those are the values the old manifests hold
        if sp.deployed_state:
            template = _template(sp.deployed_product or sp.product, templates)
            secrets.deployed[sp.guid] = _add_state(secrets, template, sp.deployed_state, sp.guid)
    for sp in staged:
        state = {"values": sp.values, "secrets": sp.secrets}
        _add_state(secrets, _template(sp.product, templates), state, sp.guid)
    products = {p.pk: p for p in Product.objects.all()}
    for inst in Installation.objects.exclude(snapshot=None).order_by("-id"):
        snapshot = inst.snapshot or {}
        for guid, entry in (snapshot.get("products") or {}).items():
            if not isinstance(entry, Mapping):
                continue
            secrets.add_credentials(entry.get("credentials") or {})
            template = _template(products.get(entry.get("product_id")), templates)
            _add_state(secrets, template, entry.get("state"), guid)
        director = snapshot.get("director") or {}
        secrets.add((director.get("state") or {}).get("vcenter_password"))
        _add_config_text(secrets, director.get("cpi_config"))
    for row in Credential.objects.order_by("-id"):
        name = row.name
        if name.startswith(f"{CREDENTIAL_ROOT}/") or row.type != "value":
            secrets.add_variable(name, row.value)
        elif is_secret_key(name.rsplit("/", 1)[-1]):
            secrets.add_variable(name, row.value)
        else:  # an operator's ``-v`` var (a domain, a count): only secret-looking keys in it
            for value in secret_values(row.value if isinstance(row.value, dict) else {}):
                secrets.add(value)
    for row in Variable.objects.exclude(value=None):
        secrets.add_variable(row.name, row.value)
    for d in DirectorConfig.objects.all():
        secrets.add(d.vcenter_password)
        secrets.add((d.deployed_state or {}).get("vcenter_password"))
    for config in Config.objects.filter(type="cpi"):
        _add_config_text(secrets, config.content)
    _add_director_attribute_secrets(secrets, apps.get_model("director", "DirectorAttribute"))
    return secrets


def _add_director_attribute_secrets(secrets: Secrets, model) -> None:
    """A director setting's secret part (the health monitor's SMTP password), as vCenter's."""
    if "secret" not in {f.name for f in model._meta.get_fields()}:
        return  # the tiles migration may run before director 0007 added the column
    for value in model.objects.exclude(secret="").values_list("secret", flat=True):
        secrets.add(value)


# --------------------------------------------------------------------------- rewriting


class Replacer:
    """Every secret replaced in one pass, as written and as JSON escapes it (a log line).

    Longest first where secrets overlap, so a value holding another (a key
    and its certificate) goes whole.
    """

    def __init__(self, pairs: Iterable[tuple[str, str]]):
        mapping: dict[str, str] = {}
        for secret, replacement in sorted(pairs, key=lambda kv: (-len(kv[0]), kv[0])):
            for form in (
                secret,
                json.dumps(secret)[1:-1],
                json.dumps(secret, ensure_ascii=False)[1:-1],
            ):
                mapping.setdefault(form, replacement)
        keys = sorted(mapping, key=lambda k: (-len(k), k))
        self._map = mapping
        self._bytes = {k.encode(): v.encode() for k, v in mapping.items()}
        self._re = re.compile("|".join(map(re.escape, keys))) if keys else None
        self._bytes_re = (
            re.compile(b"|".join(re.escape(k.encode()) for k in keys)) if keys else None
        )

    def text(self, text: str) -> tuple[str, int]:
        """``text`` with each secret replaced, and how many were."""
        if self._re is None or not text:
            return text, 0
        return self._re.subn(lambda m: self._map[m.group(0)], text)

    def data(self, data: bytes) -> tuple[bytes, int]:
        if self._bytes_re is None or not data:
            return data, 0
        return self._bytes_re.subn(lambda m: self._bytes[m.group(0)], data)

    def tree(self, node: Any) -> tuple[Any, int]:
        """A copy of a JSON/YAML tree with every secret in its strings (and keys) replaced."""
        if isinstance(node, str):
            return self.text(node)
        if isinstance(node, Mapping):
            out, total = {}, 0
            for k, v in node.items():
                if isinstance(k, str):
                    k, n = self.text(k)
                    total += n
                out[k], n = self.tree(v)
                total += n
            return out, total
        if isinstance(node, list):
            items = [self.tree(v) for v in node]
            return [v for v, _ in items], sum(n for _, n in items)
        return node, 0


def _resolve(text: str, credentials: Mapping[str, Mapping]) -> Any:
    """What the director makes of a string of references, or None if one is unknown."""

    def lookup(ref: str) -> Any:
        if not ref.startswith(f"{CREDENTIAL_ROOT}/"):
            return f"(({ref}))"  # another variable: the old render kept it as it is
        name, _, key = ref.rpartition(".")
        entry = credentials.get(name)
        if not name or not isinstance(entry, Mapping) or key not in entry:
            raise KeyError(ref)
        return entry[key]

    try:
        whole = _REFERENCE.fullmatch(text)
        if whole:
            return lookup(whole.group(1))
        return _REFERENCE.sub(lambda m: str(lookup(m.group(1))), text)
    except KeyError:
        return None


def _by_name(items: list) -> dict | None:
    if items and all(isinstance(i, Mapping) and isinstance(i.get("name"), str) for i in items):
        return {i["name"]: i for i in items}
    return None


def align_references(stored: Any, rendered: Any, credentials: Mapping) -> tuple[Any, int]:
    """``stored`` with the renderer's reference wherever it holds what the reference resolves to.

    ``rendered`` is the same document rendered with references; lists of
    named maps (instance groups, jobs) are matched by name, other lists by
    position. Everything else of ``stored`` is kept as it is.
    """
    if isinstance(stored, str) and isinstance(rendered, str):
        if rendered != stored and CREDENTIAL_ROOT in rendered:
            if _resolve(rendered, credentials) == stored:
                return rendered, 1
        return stored, 0
    if isinstance(stored, Mapping) and isinstance(rendered, Mapping):
        out, total = {}, 0
        for k, v in stored.items():
            if k in rendered:
                v, n = align_references(v, rendered[k], credentials)
                total += n
            out[k] = v
        return out, total
    if isinstance(stored, list) and isinstance(rendered, list):
        named = _by_name(rendered)
        out, total = [], 0
        for i, v in enumerate(stored):
            if named is not None and isinstance(v, Mapping):
                other = named.get(v.get("name"))
            else:
                other = rendered[i] if i < len(rendered) else None
            if other is not None:
                v, n = align_references(v, other, credentials)
                total += n
            out.append(v)
        return out, total
    return stored, 0


@dataclass
class _Product:
    """A tile deployment: its variables as deployed, its manifest rendered with references."""

    credentials: dict[str, dict]
    rendered: dict | None


def _render_with_references(sp_pk: int) -> dict | None:
    """The tile's deployed configuration rendered as the console renders it now.

    Uses the live render path (the Director tile's networks, the stemcell,
    other products). In a savepoint, and any failure is None: this only
    places identities and certificates exactly; without it a secret is
    still replaced by value.
    """
    try:
        with transaction.atomic():
            sp = StagedProduct.objects.select_related("product", "deployed_product").get(pk=sp_pk)
            state = sp.deployed_state or {}
            deployed = StagedProduct(
                pk=sp.pk,
                guid=sp.guid,
                product=sp.deployed_product or sp.product,
                values=state.get("values") or {},
                secrets=state.get("secrets") or {},
                network_and_azs=state.get("network_and_azs") or {},
                resource_config=state.get("resource_config") or {},
                errands=state.get("errands") or {},
            )
            ctx = render_context(deployed, require_stemcell=False)
            return render_manifest(deployed.product.template(), deployed.all_values(), ctx)
    except Exception:  # noqa: BLE001 - best effort; the by-value replacement still runs
        return None


class _Scrubber:
    def __init__(self, apps, secrets: Secrets, render: bool):
        self.apps = apps
        self.secrets = secrets
        self.replace = secrets.replacer()
        self.redact = secrets.replacer(REDACTED)
        self.render = render
        self.products: dict[str, _Product] = {}
        # A tile may reference another tile's credentials: resolve against all of them.
        self.credentials = {n: v for c in secrets.deployed.values() for n, v in c.items()}
        self.counts: dict[tuple[str, str, str], int] = {}

    def note(self, model, row: Any, column: str, n: int) -> None:
        if n:
            key = (model._meta.db_table, str(row), column)
            self.counts[key] = self.counts.get(key, 0) + n

    def product(self, name: Any) -> _Product | None:
        if not isinstance(name, str) or name not in self.secrets.deployed:
            return None
        if name not in self.products:
            StagedProduct = self.apps.get_model("tiles", "StagedProduct")
            sp = StagedProduct.objects.filter(guid=name).values_list("pk", flat=True).first()
            rendered = _render_with_references(sp) if (self.render and sp) else None
            self.products[name] = _Product(self.secrets.deployed[name], rendered)
        return self.products[name]

    def document(self, doc: Any, product: _Product | None, part: Callable | None = None):
        """A manifest (or part of one) with references at credential places, then by value."""
        count = 0
        if product is not None and product.rendered is not None:
            rendered = part(product.rendered) if part else product.rendered
            if rendered is not None:
                doc, count = align_references(doc, rendered, self.credentials)
        doc, n = self.replace.tree(doc)
        return doc, count + n

    def manifest_text(self, text: str, dump: Callable[[Any], str], name: str | None = None):
        """A manifest's YAML text rewritten (``dump`` as it was written), and how many values."""
        if not text:
            return text, 0
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            return self.replace.text(text)
        if not isinstance(doc, dict):
            return self.replace.text(text)
        doc, count = self.document(doc, self.product(name or doc.get("name")))
        return (dump(doc), count) if count else (text, 0)

    # -- the places a rendered tile manifest went ------------------------------

    def deployments(self) -> None:
        Deployment = self.apps.get_model("director", "Deployment")
        for dep in Deployment.objects.order_by("id"):
            updates = {}
            for column, dump in (("manifest_text", manifest_yaml), ("manifest", dump_yaml)):
                text, n = self.manifest_text(getattr(dep, column), dump, dep.name)
                if n:
                    updates[column] = text
                    self.note(Deployment, f"{dep.pk} ({dep.name})", column, n)
            if updates:
                Deployment.objects.filter(pk=dep.pk).update(**updates)

    def staged_products(self) -> None:
        StagedProduct = self.apps.get_model("tiles", "StagedProduct")
        for sp in StagedProduct.objects.exclude(deployed_manifest="").order_by("id"):
            text, n = self.manifest_text(sp.deployed_manifest, manifest_yaml, sp.guid)
            if n:
                StagedProduct.objects.filter(pk=sp.pk).update(deployed_manifest=text)
                self.note(StagedProduct, f"{sp.pk} ({sp.guid})", "deployed_manifest", n)

    def instances(self) -> None:
        Instance = self.apps.get_model("director", "Instance")
        rows = Instance.objects.select_related("deployment").order_by("id")
        for inst in rows.iterator(chunk_size=500):
            spec = inst.spec_json or {}
            product = self.product(inst.deployment.name)
            apply_spec = spec.get("apply_spec")
            count = 0
            if isinstance(apply_spec, Mapping) and isinstance(apply_spec.get("properties"), dict):
                props = dict(apply_spec["properties"])
                for job, job_props in props.items():
                    props[job], n = self.document(
                        job_props, product, lambda m, g=inst.group, j=job: _job_props(m, g, j)
                    )
                    count += n
                spec = {**spec, "apply_spec": {**apply_spec, "properties": props}}
            spec, n = self.replace.tree(spec)
            count += n
            if count:
                Instance.objects.filter(pk=inst.pk).update(spec_json=spec)
                self.note(Instance, f"{inst.pk} ({inst.group}/{inst.uuid})", "spec_json", count)

    def tasks(self) -> None:
        Task = self.apps.get_model("director", "Task")
        rows = Task.objects.order_by("id").only("id", "args", "deployment_name")
        for task in rows.iterator(chunk_size=500):
            args = task.args
            if not isinstance(args, dict):
                continue
            count = 0
            if isinstance(args.get("manifest_text"), str):
                text, count = self.manifest_text(args["manifest_text"], manifest_yaml)
                args = {**args, "manifest_text": text}
            args, n = self.replace.tree(args)
            count += n
            if count:
                Task.objects.filter(pk=task.pk).update(args=args)
                self.note(Task, task.pk, "args", count)

    # -- everything else ---------------------------------------------------------

    def other_columns(self, done: set[str]) -> None:
        """Every text and JSON column of every model not rewritten above, by value."""
        encrypted = (EncryptedTextField, EncryptedJSONField)
        tables = set(connection.introspection.table_names())
        for model in self.apps.get_models():
            meta = model._meta
            if meta.proxy or not meta.managed or f"{meta.label}.*" in CONFIG_COLUMNS:
                continue
            if meta.db_table not in tables:
                continue  # a model whose migration has not run: no rows to hold anything
            fields = {
                f.name: f
                for f in meta.local_concrete_fields
                if isinstance(f, models.CharField | models.TextField | models.JSONField)
                and not isinstance(f, encrypted)
                and not f.primary_key
                and f"{meta.label}.{f.name}" not in CONFIG_COLUMNS | done
            }
            columns = list(fields)
            if not columns:
                continue
            pk = meta.pk.name
            for row in model.objects.order_by(pk).values(pk, *columns).iterator(chunk_size=1000):
                updates = {}
                for column in columns:
                    value, n = self.replace.tree(row[column])
                    limit = getattr(fields[column], "max_length", None)
                    if n and isinstance(value, str) and limit and len(value) > limit:
                        # A reference is longer than its value: the column takes ((redacted)).
                        value = self.redact.text(row[column])[0][:limit]
                    if n:
                        updates[column] = value
                        self.note(model, row[pk], column, n)
                if updates:
                    model.objects.filter(pk=row[pk]).update(**updates)

    def store_variables(self) -> list[str]:
        """The deployed values under the references' names, where the store has none."""
        Credential = self.apps.get_model("director", "Credential")
        Deployment = self.apps.get_model("director", "Deployment")
        existing = set(Deployment.objects.values_list("name", flat=True))
        stored = []
        for guid, credentials in sorted(self.secrets.deployed.items()):
            if guid not in existing:
                continue
            for name, value in sorted(credentials.items()):
                if not Credential.objects.filter(name=name).exists():
                    Credential.objects.create(name=name, type="value", value=value)
                    stored.append(name)
        return stored


def _job_props(manifest: Mapping, group: str, job: str) -> Any:
    for ig in manifest.get("instance_groups") or []:
        if isinstance(ig, Mapping) and ig.get("name") == group:
            for j in ig.get("jobs") or []:
                if isinstance(j, Mapping) and j.get("name") == job:
                    return j.get("properties")
    return None


_HANDLED = {
    "director.Deployment.manifest_text",
    "director.Deployment.manifest",
    "director.Instance.spec_json",
    "director.Task.args",
}


def scrub_files(root: Path, secrets: Secrets) -> list[Change]:
    """Rewrite each file under ``root`` holding a secret (see ``Replacer``), atomically."""
    replace = secrets.replacer()
    changes: list[Change] = []
    if not secrets.replacements or not root.is_dir():
        return changes
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        if path.name.endswith(".scrub-tmp"):
            continue
        data, count = replace.data(path.read_bytes())
        if count:
            _write_atomically(path, data)
            changes.append(Change("file", str(path.relative_to(root)), "", count))
    return changes


def _write_atomically(path: Path, data: bytes) -> None:
    mode = path.stat().st_mode & 0o7777
    tmp = path.with_name(f".{path.name}.{os.getpid()}.scrub-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def scrub_secrets(
    apps=None,
    *,
    render: bool = True,
    log_dir: Path | None = None,
    on_files: Callable[[list[Change]], None] | None = None,
) -> ScrubReport:
    """Replace every secret in clear (see the module docstring); rows in one transaction.

    ``apps`` is a model registry (a migration's, default the installed
    models). ``render=False`` skips re-rendering (by value only). The task
    log files under ``log_dir`` (default ``settings.TASK_LOG_DIR``) are
    rewritten when the transaction commits (at once when no outer
    transaction is open); their changes are added to the report and passed
    to ``on_files`` then.
    """
    if apps is None:
        apps = django_apps
    report = ScrubReport()
    with transaction.atomic():
        secrets = collect_secrets(apps)
        if not secrets.replacements and not secrets.deployed:
            return report
        scrubber = _Scrubber(apps, secrets, render)
        scrubber.deployments()
        scrubber.staged_products()
        scrubber.instances()
        scrubber.tasks()
        scrubber.other_columns(_HANDLED)
        report.stored = scrubber.store_variables()
        report.unrendered = sorted(
            name for name, p in scrubber.products.items() if p.rendered is None
        )
        report.rows = [Change(t, r, c, n) for (t, r, c), n in sorted(scrubber.counts.items())]
        root = Path(log_dir or settings.TASK_LOG_DIR)

        def files() -> None:
            changes = scrub_files(root, secrets)
            report.files.extend(changes)
            if on_files is not None:
                on_files(changes)

        transaction.on_commit(files)
    return report


#: Set by the migration when it could not render a tile again: finished after ``migrate``.
PENDING_ATTRIBUTE = "tiles.scrub_secrets_pending"


def mark_pending(apps) -> None:
    """Ask for ``finish_pending_scrub`` after ``migrate`` (the migration's models are older)."""
    apps.get_model("director", "DirectorAttribute").objects.update_or_create(
        name=PENDING_ATTRIBUTE, defaults={"value": "1"}
    )


def finish_pending_scrub(sender, verbosity: int = 1, **kwargs) -> None:
    """``post_migrate``: the migration's scrub again, now that every migration has run.

    In the migration, a tile's deployed configuration renders only while the
    models match the tables; when a later migration changes them, the
    migration replaces by value and marks the work pending. Here, with
    every table as the models expect, the references go exactly where the
    renderer puts them (identities and certificates too), so Review Pending
    Changes shows no change. Runs once; ``manage.py scrub_secrets`` is the
    way to run it again.
    """
    if getattr(sender, "name", None) != "tiles":
        return
    if DirectorAttribute._meta.db_table not in connection.introspection.table_names():
        return
    if not DirectorAttribute.objects.filter(name=PENDING_ATTRIBUTE).exists():
        return

    def files(changes):
        for line in file_lines(changes) if verbosity else ():
            print(f"  scrub_secrets: {line}")

    report = scrub_secrets(on_files=files)
    if verbosity:
        for line in report.lines(files=False):
            print(f"  scrub_secrets: {line}")
    DirectorAttribute.objects.filter(name=PENDING_ATTRIBUTE).delete()
