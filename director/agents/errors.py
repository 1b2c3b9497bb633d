"""What can go wrong talking to an agent, as typed errors that name the agent and the method.

BOSH's director raises ``RpcTimeout`` (no answer), ``RpcRemoteException``
(the agent answered ``{"exception": ...}``), ``AgentJobNotRunning`` (the jobs
did not reach ``running`` in the watch time) and ``Timed out pinging``. The
same here, each carrying ``agent_id``, ``method`` and, when the caller gave
it, the instance name, so that a task log says which VM failed at what.
"""

from __future__ import annotations


class MbusUnavailable(Exception):
    """The director cannot reach the message bus (not configured, down, or refusing us)."""


class AgentError(Exception):
    """Talking to one agent failed. ``str()`` names the agent (and instance) and the method."""

    def __init__(self, agent_id: str, method: str, message: str, *, instance: str = ""):
        self.agent_id = agent_id
        self.method = method
        self.message = message
        self.instance = instance
        who = f"agent '{agent_id}'" + (f" ({instance})" if instance else "")
        super().__init__(f"{who}: {method}: {message}")


class AgentUnresponsive(AgentError):
    """No answer within the timeout (BOSH ``RpcTimeout`` / ``Timed out pinging``)."""


class AgentRemoteError(AgentError):
    """The agent answered with an exception (BOSH ``RpcRemoteException``)."""


class AgentUnknownMethod(AgentRemoteError):
    """The agent does not know the method (``unknown message <m>``): an older agent."""


class AgentTaskFailed(AgentRemoteError):
    """A long-running method's task ended in an error (``Task <id> result: ...``)."""

    def __init__(self, agent_id, method, message, *, task_id: str = "", instance: str = ""):
        self.task_id = task_id
        super().__init__(agent_id, method, message, instance=instance)


class AgentTaskCancelled(AgentTaskFailed):
    """The director cancelled the task (``cancel_task``) and the agent stopped it."""


class AgentBadReply(AgentError):
    """The reply is not BOSH's envelope (not JSON, or neither ``value`` nor ``exception``)."""


class AgentJobNotRunning(AgentError):
    """The jobs did not reach ``running`` within the watch time (BOSH's message)."""
