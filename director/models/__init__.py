"""The director's data model: BOSH's schema (reference §6) as Django models.

One module per concern; everything is importable from ``director.models``.

=================  =========================================================
stemcell           ``Stemcell``
release            ``Release``, ``ReleaseVersion``, ``ReleaseJob``, ``ReleasePackage``
compiled_package   ``CompiledPackage`` (packages compiled per stemcell, reused)
config             ``Config`` (versioned cloud/runtime/cpi/resurrection/custom),
                   ``DirectorAttribute``
deployment         ``Deployment``, ``DeploymentProblem``
instance           ``Instance``, ``Vm``, ``OrphanedVm``
disk               ``PersistentDisk``, ``OrphanDisk``
ip                 ``IpAddress``
variable           ``Credential`` (the variable store), ``VariableSet``, ``Variable``
task               ``Task``, ``TaskEvent``, ``TaskState`` + state groups
agent              ``AgentHeartbeat``, ``AgentAlert`` (what agents told the HM)
health             ``Alert``, ``ResurrectionEvent`` (the HM's alerts, the resurrector's timeline)
lock               ``Lock``
event              ``Event`` (audit)
=================  =========================================================
"""

from .agent import AgentAlert, AgentHeartbeat
from .compiled_package import CompiledPackage
from .config import KNOWN_CONFIG_TYPES, Config, ConfigType, DirectorAttribute
from .deployment import Deployment, DeploymentProblem, ProblemState
from .disk import OrphanDisk, PersistentDisk
from .event import Event
from .health import Alert, AlertCategory, Decision, ResurrectionEvent, Severity
from .instance import Instance, InstanceState, OrphanedVm, Vm
from .ip import IpAddress
from .lock import Lock
from .release import Release, ReleaseJob, ReleasePackage, ReleaseVersion
from .stemcell import Stemcell
from .task import (
    ACTIVE_STATES,
    CANCELLABLE_STATES,
    RUNNING_STATES,
    TERMINAL_STATES,
    Task,
    TaskEvent,
    TaskState,
)
from .variable import Credential, Variable, VariableSet

__all__ = [
    "ACTIVE_STATES",
    "AgentAlert",
    "AgentHeartbeat",
    "Alert",
    "AlertCategory",
    "CANCELLABLE_STATES",
    "CompiledPackage",
    "KNOWN_CONFIG_TYPES",
    "RUNNING_STATES",
    "TERMINAL_STATES",
    "Config",
    "ConfigType",
    "Credential",
    "Deployment",
    "Decision",
    "DeploymentProblem",
    "DirectorAttribute",
    "Event",
    "Instance",
    "InstanceState",
    "IpAddress",
    "Lock",
    "OrphanDisk",
    "OrphanedVm",
    "PersistentDisk",
    "ProblemState",
    "Release",
    "ReleaseJob",
    "ReleasePackage",
    "ReleaseVersion",
    "ResurrectionEvent",
    "Severity",
    "Stemcell",
    "Task",
    "TaskEvent",
    "TaskState",
    "Variable",
    "VariableSet",
    "Vm",
]
