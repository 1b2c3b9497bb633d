"""The resurrector's pure rules: meltdown, and the ``resurrection`` config (BOSH §5.2, §5.3).

No I/O here: the monitor reads the thresholds and configs and hands them in.

**Meltdown** (BOSH ``M/plugins/resurrector_helper.rb``): a deployment is in
meltdown when the instances found unhealthy within the last
``time_threshold`` seconds are at least ``minimum_down_jobs`` *and* at least
``percent_threshold`` percent of its instances. Then nothing is recreated
(many VMs failing at once is an infrastructure problem, and recreating them
all could make it worse); one meltdown alert says so. Otherwise the
deployment is ``managed`` (or ``normal`` with nothing unhealthy).

**Resurrection config** (``bosh update-config --type resurrection``)::

    rules:
    - enabled: false
      include: {deployments: [zk], instance_groups: [zookeeper]}
      exclude: {instance_groups: [smoke-tests]}

A rule applies to ``(deployment, group)`` when its ``include`` matches (an
empty include matches everything; each list given must contain the name)
and its ``exclude`` does not (an empty exclude matches nothing). The result
is the AND of ``enabled`` over every applying rule of every resurrection
config; with none applying, resurrection is enabled. The global switch
(``bosh update-resurrection off``) wins over configs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: BOSH's health monitor defaults (``hm.resurrector`` in the health_monitor job spec).
DEFAULT_MINIMUM_DOWN_JOBS = 5
DEFAULT_PERCENT_THRESHOLD = 20
DEFAULT_TIME_THRESHOLD = 600

FILTER_KEYS = ("deployments", "instance_groups")


@dataclass(frozen=True)
class MeltdownThresholds:
    """The Director tile's meltdown settings; ``percent_threshold`` is 0..100."""

    minimum_down_jobs: int = DEFAULT_MINIMUM_DOWN_JOBS
    percent_threshold: float = DEFAULT_PERCENT_THRESHOLD
    time_threshold: int = DEFAULT_TIME_THRESHOLD

    @classmethod
    def from_mapping(cls, data: Any) -> MeltdownThresholds:
        """From the stored JSON; a missing or unusable value keeps BOSH's default."""
        data = data if isinstance(data, Mapping) else {}

        def number(key: str, default: float, lo: float, hi: float | None = None) -> Any:
            value = data.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return default
            if value < lo or (hi is not None and value > hi):
                return default
            return value

        return cls(
            minimum_down_jobs=int(number("minimum_down_jobs", DEFAULT_MINIMUM_DOWN_JOBS, 0)),
            percent_threshold=float(number("percent_threshold", DEFAULT_PERCENT_THRESHOLD, 0, 100)),
            time_threshold=int(number("time_threshold", DEFAULT_TIME_THRESHOLD, 1)),
        )


def in_meltdown(unhealthy: int, total: int, thresholds: MeltdownThresholds) -> bool:
    """BOSH's test: ``unhealthy >= minimum_down_jobs and unhealthy / total >= percent``."""
    if unhealthy <= 0 or total <= 0:
        return False
    return (
        unhealthy >= thresholds.minimum_down_jobs
        and unhealthy / total * 100 >= thresholds.percent_threshold
    )


# --------------------------------------------------------------------------- config rules


class RuleError(ValueError):
    """A resurrection config that cannot be used; ``path`` names the bad part."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Filter:
    deployments: tuple[str, ...] = ()
    instance_groups: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.deployments and not self.instance_groups

    def matches(self, deployment: str, group: str) -> bool:
        if self.deployments and deployment not in self.deployments:
            return False
        if self.instance_groups and group not in self.instance_groups:
            return False
        return True


@dataclass(frozen=True)
class Rule:
    enabled: bool
    include: Filter = Filter()
    exclude: Filter = Filter()

    def applies(self, deployment: str, group: str) -> bool:
        if not self.include.matches(deployment, group):
            return False
        return self.exclude.empty or not self.exclude.matches(deployment, group)


def _filter(value: Any, path: str) -> Filter:
    if value is None:
        return Filter()
    if not isinstance(value, Mapping):
        raise RuleError(path, "must be a map with deployments and/or instance_groups")
    unknown = sorted(set(value) - set(FILTER_KEYS))
    if unknown:
        raise RuleError(f"{path}/{unknown[0]}", "unknown key (deployments, instance_groups)")
    lists = {}
    for key in FILTER_KEYS:
        names = value.get(key) or []
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise RuleError(f"{path}/{key}", "must be a list of names")
        lists[key] = tuple(names)
    return Filter(**lists)


def parse_rules(doc: Any) -> list[Rule]:
    """The rules of one resurrection config document; ``RuleError`` names a bad path."""
    if not isinstance(doc, Mapping):
        raise RuleError("content", "must be a YAML map with 'rules'")
    rules = doc.get("rules")
    if not isinstance(rules, list):
        raise RuleError("rules", "must be a list")
    out = []
    for i, raw in enumerate(rules):
        path = f"rules/{i}"
        if not isinstance(raw, Mapping):
            raise RuleError(path, "must be a map")
        if not isinstance(raw.get("enabled"), bool):
            raise RuleError(f"{path}/enabled", "must be true or false")
        unknown = sorted(set(raw) - {"enabled", "include", "exclude"})
        if unknown:
            raise RuleError(f"{path}/{unknown[0]}", "unknown key (enabled, include, exclude)")
        out.append(
            Rule(
                enabled=raw["enabled"],
                include=_filter(raw.get("include"), f"{path}/include"),
                exclude=_filter(raw.get("exclude"), f"{path}/exclude"),
            )
        )
    return out


@dataclass(frozen=True)
class ResurrectionRules:
    """Every rule of every resurrection config, asked per (deployment, instance group)."""

    rules: tuple[Rule, ...] = ()

    @classmethod
    def from_documents(cls, docs: Iterable[Any]) -> ResurrectionRules:
        rules: list[Rule] = []
        for doc in docs:
            rules.extend(parse_rules(doc))
        return cls(tuple(rules))

    def enabled(self, deployment: str, group: str) -> bool:
        return all(r.enabled for r in self.rules if r.applies(deployment, group))
