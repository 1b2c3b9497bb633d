"""What agents told the health monitor: their last heartbeat and their alerts.

Agents publish a heartbeat every 30 s on ``hm.agent.heartbeat.<agent_id>``,
monit's alerts on ``hm.agent.alert.<agent_id>`` and, when draining for a
shutdown, ``hm.agent.shutdown.<agent_id>`` (reference bosh-agent.md §4). The
agent listener (``director.agents.listener``) writes them here for the
dashboards and the health monitor, which times an agent out after
``agent_timeout`` without a heartbeat.

Rows are keyed by agent id, not by ``Vm``: an agent that belongs to no VM
(BOSH's *rogue agent*) is recorded too, and a heartbeat never waits for, or
is lost with, a deployment's rows. Join on ``Vm.agent_id``.
"""

from django.db import models


class AgentHeartbeat(models.Model):
    """The last heartbeat of one agent (one row per agent, overwritten on each beat).

    ``vitals`` and ``processes`` are stored as the agent sent them (vitals are
    strings, as BOSH's agent sends them). ``shutdown_at`` is set when the agent
    announced a shutdown and cleared by its next heartbeat.
    """

    agent_id = models.CharField(max_length=64, unique=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    deployment = models.CharField(max_length=255, blank=True, default="")
    job = models.CharField(max_length=255, blank=True, default="")
    index = models.IntegerField(null=True, blank=True)
    instance_id = models.CharField(max_length=64, blank=True, default="", help_text="node_id")
    job_state = models.CharField(max_length=32, blank=True, default="")
    number_of_processes = models.IntegerField(null=True, blank=True)
    processes = models.JSONField(default=list, blank=True)
    vitals = models.JSONField(default=dict, blank=True)
    shutdown_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["agent_id"]

    def __str__(self):
        return f"{self.agent_id} ({self.job_state or 'no heartbeat'})"


class AgentAlert(models.Model):
    """An alert an agent published (monit: a process died, was restarted ...).

    ``severity`` is BOSH's: 1 alert, 2 critical, 3 error, 4 warning. Only the
    newest ``KEEP_PER_AGENT`` alerts of each agent are kept.
    """

    KEEP_PER_AGENT = 100

    agent_id = models.CharField(max_length=64)
    alert_id = models.CharField(max_length=255, blank=True, default="")
    severity = models.IntegerField(null=True, blank=True)
    title = models.TextField(blank=True, default="")
    summary = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(null=True, blank=True, help_text="as the agent stamped it")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["agent_id", "-id"], name="agentalert_agent_idx")]
        ordering = ["-id"]

    def __str__(self):
        return f"{self.agent_id}: {self.title}"
