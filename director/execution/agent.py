"""The executor's side of a VM's agent: which client, which credentials, the first contact.

Every VM the director creates runs a BOSH agent that it reaches over the
message bus (``director.agents``). Three moments belong to the executor:

* before ``create_vm``: the agent is let onto the bus (``nats_auth.allow_agents``)
  and its settings get ``env.bosh.mbus`` with the bus URL and a short-lived
  **bootstrap** certificate (``<agent_id>.bootstrap.agent.bosh-internal``),
  as BOSH's ``CreateVmStep`` does (``mbus_env``);
* after ``create_vm``: ``wait_until_ready`` pings until the agent answers,
  then ``update_settings`` hands it its **permanent** certificate
  (``<agent_id>.agent.bosh-internal``); the agent reconnects with it, so the
  director pings again before the next call (``greet``);
* every later call goes through ``agent_for(vm)``: an ``AgentClient`` naming
  the instance in its errors.

No certificate is stored by the director: the bootstrap one travels in the
VM's settings (guestinfo, env.iso), the permanent one in one message.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings

from director.agents import nats_auth
from director.agents.certs import MbusPki
from director.agents.client import AgentClient
from director.agents.errors import AgentUnresponsive
from director.models import Vm
from director.runner import TaskCancelled

#: Seconds between ``get_task`` polls of a long-running agent method (BOSH: 1 s; a deploy
#: makes a dozen such calls per instance, so half a second saves minutes on big ones).
DEFAULT_POLL_INTERVAL = 0.5
#: Seconds within which an agent given new bus credentials drops its connection.
RECONNECT_WINDOW = 3.0


def agent_for(vm: Vm, instance_name: str = "") -> AgentClient:
    """The agent of ``vm`` (errors name ``instance_name`` or the VM's instance)."""
    name = instance_name or (str(vm.instance) if vm.instance_id else vm.cid)
    return AgentClient(
        vm.agent_id,
        instance=name,
        poll_interval=float(
            getattr(settings, "DIRECTOR_AGENT_POLL_INTERVAL", DEFAULT_POLL_INTERVAL)
        ),
    )


#: ``pre-stop`` env when an instance goes for good (BOSH's Stopper).
NEXT_STATE_DELETE = {
    "BOSH_VM_NEXT_STATE": "delete",
    "BOSH_INSTANCE_NEXT_STATE": "delete",
    "BOSH_DEPLOYMENT_NEXT_STATE": "keep",
}


def cancel_requested(ctx) -> Callable[[], bool]:
    """``should_cancel`` for drain and errands: true once the task is being cancelled."""

    def asked() -> bool:
        try:
            ctx.checkpoint()
        except TaskCancelled:
            return True
        return False

    return asked


def mbus_env(agent_id: str) -> dict:
    """``env.bosh.mbus`` for a new VM: the bus URL and a bootstrap certificate.

    The agent is allowed on the bus first, so it can connect as soon as it boots.
    """
    nats_auth.allow_agents(settings.NATS_DIR, [agent_id])
    creds = MbusPki(settings.NATS_DIR).issue_agent(agent_id, bootstrap=True)
    return {"urls": [settings.NATS_URL], "cert": creds.mbus_cert()}


def greet(client: AgentClient, timeout: float) -> None:
    """Wait for a new VM's agent, give it its permanent certificate, wait for it again."""
    client.wait_until_ready(timeout)
    permanent = MbusPki(settings.NATS_DIR).issue_agent(client.agent_id, bootstrap=False)
    client.update_settings(
        {
            "trusted_certs": "",
            "disk_associations": [],
            "mbus": {"urls": [settings.NATS_URL], "cert": permanent.mbus_cert()},
        }
    )
    # The agent reconnects with the new certificate about a second after answering; a
    # message sent while it is away is lost. Ping until it goes away (or surely came back).
    deadline = time.monotonic() + RECONNECT_WINDOW
    while time.monotonic() < deadline:
        try:
            client.ping(timeout=0.5)
        except AgentUnresponsive:
            break
        time.sleep(0.2)
    client.wait_until_ready(timeout)
