"""Configs (cloud, cpi, runtime, resurrection...): validate, update, delete, list, get.

Each ``(type, name)`` keeps its versions; an update whose content is the
current one stores nothing. Cloud and resurrection configs are parsed as
the director will read them, so a bad one is refused naming its path.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml
from django.db import transaction
from django.db.models import Max, QuerySet

from opsconsole.errors import NotFound, ServiceError
from opsconsole.redaction import register_yaml_secrets

from ..events import record_event
from ..health.rules import RuleError, parse_rules
from ..manifest import ManifestError
from ..manifest.cloud_config import parse_cloud_config
from ..models import KNOWN_CONFIG_TYPES, Config, ConfigType


def _config_object_type(type: str) -> str:
    return f"{type}-config" if type in KNOWN_CONFIG_TYPES else "config"


def _manifest_errors(exc) -> dict:
    errors: dict[str, list[str]] = {}
    for path, message in exc.errors:
        errors.setdefault(path or "content", []).append(message)
    return errors


def validate_config(type: str, name: str, content: str) -> dict:
    """Parse and check a config's YAML; returns the document or raises ServiceError."""
    if not content or not content.strip():
        raise ServiceError({"content": ["must not be empty"]})
    try:
        doc = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise ServiceError({"content": [f"not valid YAML: {exc}"]}) from None
    if not isinstance(doc, dict):
        raise ServiceError({"content": ["must be a YAML map"]})
    if type == ConfigType.CLOUD:
        others = Config.objects.filter(type=type, deleted=False).exclude(name=name).exists()
        try:
            parse_cloud_config(doc, partial=others or name != "default")
        except ManifestError as exc:
            raise ServiceError(_manifest_errors(exc)) from None
    elif type == ConfigType.CPI:
        cpis = doc.get("cpis")
        if not isinstance(cpis, list) or not cpis:
            raise ServiceError({"cpis": ["must list at least one CPI"]})
        for i, entry in enumerate(cpis):
            where = f"cpis/{entry.get('name', i) if isinstance(entry, dict) else i}"
            if not isinstance(entry, dict):
                raise ServiceError({where: ["must be a map"]})
            for key in ("name", "type"):
                if not entry.get(key):
                    raise ServiceError({f"{where}/{key}": ["is required"]})
            if entry["type"] != "vsphere":
                raise ServiceError({f"{where}/type": ["only 'vsphere' is supported"]})
            if not isinstance(entry.get("properties"), dict):
                raise ServiceError({f"{where}/properties": ["is required (a map)"]})
    elif type == ConfigType.RESURRECTION:
        try:
            parse_rules(doc)
        except RuleError as exc:
            raise ServiceError({exc.path: [exc.message]}) from None
    return doc


@dataclass(frozen=True)
class ConfigUpdate:
    config: Config
    changed: bool


def update_config(type: str, name: str, content: str, user: str) -> ConfigUpdate:
    """Store a new version of ``(type, name)``; unchanged content stores nothing."""
    type = (type or "").strip()
    name = (name or "default").strip()
    if not type:
        raise ServiceError({"type": ["is required"]})
    too_long = {
        field: [f"must be at most {limit} characters"]
        for field, value in (("type", type), ("name", name))
        if len(value) > (limit := Config._meta.get_field(field).max_length)
    }
    if too_long:
        raise ServiceError(too_long)
    validate_config(type, name, content)
    register_yaml_secrets(content)  # a password that arrives here never reaches a log
    with transaction.atomic():
        latest = Config.latest(type, name)
        # Content is encrypted (a fresh token each write): compare the decrypted text.
        if latest is not None and latest.content == content:
            return ConfigUpdate(latest, changed=False)
        config = Config.objects.create(type=type, name=name, content=content)
        record_event(
            "update" if latest else "create",
            _config_object_type(type),
            name,
            user=user,
            context={"id": config.id},
        )
    return ConfigUpdate(config, changed=True)


def delete_config(type: str, name: str, user: str) -> int:
    """Mark every version of ``(type, name)`` deleted; how many rows were marked."""
    count = Config.objects.filter(type=type, name=name, deleted=False).update(deleted=True)
    if not count:
        raise NotFound(f"No config of type '{type}' named '{name}'")
    record_event("delete", _config_object_type(type), name, user=user)
    return count


def list_configs(
    type: str | None = None, name: str | None = None, latest: bool = True
) -> QuerySet[Config]:
    """Configs, newest first; ``latest`` keeps only the current version of each (type, name)."""
    qs = Config.objects.filter(deleted=False)
    if type:
        qs = qs.filter(type=type)
    if name:
        qs = qs.filter(name=name)
    if latest:
        ids = qs.values("type", "name").annotate(latest_id=Max("id")).values("latest_id")
        qs = Config.objects.filter(id__in=ids)
    return qs.order_by("-id")


def get_config(config_id: int) -> Config:
    config = Config.objects.filter(id=config_id).first()
    if config is None:
        raise NotFound(f"Config {config_id} does not exist")
    return config
