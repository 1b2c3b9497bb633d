"""The director's side of BOSH's agent protocol, over the message bus (NATS with TLS).

=============  ================================================================
certs          the director's CA and the certificates it signs (server,
               director, health monitor, agents' bootstrap and permanent)
nats_auth      nats-server's users and rights per certificate subject; adding
               agents, syncing them with the VMs, reloading the server
mbus           one NATS connection per process, in a loop thread, for
               synchronous callers (the executor's threads)
client         ``AgentClient``: the agent methods, task polling, timeouts,
               ``wait_until_ready``, ``wait_until_running``
errors         typed errors naming the agent and the method
listener       records heartbeats and alerts (``manage.py agent_listener``)
=============  ================================================================

The server process itself is started by ``opsconsole.localservices.nats``
(``runstack``, the test fixture ``nats_server``).
"""
