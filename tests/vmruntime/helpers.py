"""Polling helpers for the VM runtime tests."""

from __future__ import annotations

import time


def wait_for(predicate, timeout=30.0, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def running_pid(client):
    state = client.get_state()
    procs = state.get("processes") or []
    if state["job_state"] == "running" and procs and procs[0]["state"] == "running":
        return procs[0]["pid"]
    return None
