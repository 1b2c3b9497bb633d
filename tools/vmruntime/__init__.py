"""The VM runtime: the stand-in for the inside of vcsim's VMs.

vcsim's VMs run nothing, so this process plays the BOSH agent inside every
one of them: it watches vCenter (``watcher.py``), and for each powered-on VM
that carries agent settings (``guestinfo.userdata``, as the CPI writes them)
runs an agent (``agent.py``, its method families in ``jobs.py``, ``drain.py``,
``compiling.py``, ``logs.py`` and ``disks.py``, sharing ``actions.py``) that
speaks BOSH's agent protocol over NATS with
that VM's credentials and does the work for real on this machine, under a
directory of the VM's own (``layout.py``) that its processes see at
``/var/vcap`` (``sandbox.py``, bubblewrap): packages compiled by their
``packaging`` scripts, jobs installed from rendered templates and supervised
by a minimal monit (``monit.py``, ``bpm.py``), hook scripts, drain and
errands with their real exit codes, logs, persistent disks as directories
that follow the disk's VMDK, heartbeats and alerts.

Run it as ``python -m tools.vmruntime --data-dir DIR --vcenter-file vcsim.json``.
It imports no Django: it stands outside the director, as a VM does.
"""
