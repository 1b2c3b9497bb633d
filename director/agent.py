"""Where older callers found a VM's agent; it is ``director.execution.agent`` now.

The director talks to the real BOSH agent of every VM over the message bus
(``director.agents.client.AgentClient``). ``agent_for(vm, cloud)`` is kept
for callers written against the earlier signature; the cloud is not needed.
"""

from __future__ import annotations

from typing import Any

from director.agents.client import AgentClient
from director.execution.agent import agent_for as _agent_for
from director.models import Vm


def agent_for(vm: Vm, cloud: Any = None) -> AgentClient:
    return _agent_for(vm)
