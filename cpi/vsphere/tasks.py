"""Waiting on vSphere tasks, and turning vSphere faults into CPI errors.

Every vSphere operation the CPI starts (clone, reconfigure, power, destroy,
disk create/move/extend/delete, snapshot) ends in ``wait_for_task``; every
direct SOAP call that can fault goes through ``vsphere_call``. Both map
``vim.fault.*`` with ``map_fault`` so the director sees BOSH's typed errors,
with the action and the vSphere message in the text:

* file / object not found      -> the caller's ``not_found`` type (VMNotFound,
                                  DiskNotFound, ...), else CloudError
* out of space                 -> NoDiskSpace
* not enough CPU / memory      -> CloudError (ok_to_retry)
* busy / invalid state         -> CloudError (ok_to_retry)
* anything else                -> CloudError
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from pyVmomi import vim, vmodl

from cpi.base import CloudError, CpiError, NoDiskSpace

T = TypeVar("T")

DEFAULT_TASK_TIMEOUT = 3600.0

_NOT_FOUND = (
    vim.fault.FileNotFound,
    vim.fault.NotFound,
    vmodl.fault.ManagedObjectNotFound,
)
_NO_SPACE = (vim.fault.NoDiskSpace, vim.fault.OutOfBounds)
_RETRIABLE = (
    vim.fault.InsufficientResourcesFault,
    vim.fault.TaskInProgress,
    vim.fault.ConcurrentAccess,
    vim.fault.InvalidState,
    vim.fault.HostConnectFault,
    vmodl.fault.HostCommunication,
)


def fault_message(fault: BaseException) -> str:
    msg = getattr(fault, "msg", None) or ""
    if not msg:
        for lm in getattr(fault, "faultMessage", None) or []:
            if getattr(lm, "message", None):
                msg = lm.message
                break
    if msg.startswith("*types."):  # vcsim's placeholder message says nothing more
        msg = ""
    name = getattr(fault, "_wsdlName", type(fault).__name__)
    details = []
    for attr in ("invalidProperty", "file", "name", "obj"):
        value = getattr(fault, attr, None)
        if value:
            details.append(f"{attr}={getattr(value, '_moId', value)}")
    text = f"{name}: {msg}" if msg else name
    return f"{text} ({', '.join(details)})" if details else text


def map_fault(
    fault: BaseException, action: str, *, not_found: type[CpiError] | None = None
) -> CpiError:
    """A typed CPI error for a vSphere fault raised while doing ``action``."""
    if isinstance(fault, CpiError):
        return fault
    text = f"{action} failed: {fault_message(fault)}"
    if isinstance(fault, _NOT_FOUND):
        return (not_found or CloudError)(text)
    if isinstance(fault, _NO_SPACE):
        return NoDiskSpace(text)
    if isinstance(fault, _RETRIABLE):
        return CloudError(text, ok_to_retry=True)
    return CloudError(text)


def vsphere_call(
    action: str,
    fn: Callable[..., T],
    *args: Any,
    not_found: type[CpiError] | None = None,
    **kwargs: Any,
) -> T:
    """``fn(*args, **kwargs)`` with vSphere faults mapped to typed CPI errors."""
    try:
        return fn(*args, **kwargs)
    except (vmodl.MethodFault, vmodl.RuntimeFault) as fault:
        raise map_fault(fault, action, not_found=not_found) from None


def wait_raw(task: vim.Task, action: str, *, timeout: float = DEFAULT_TASK_TIMEOUT) -> Any:
    """Wait for ``task``; return its result or raise the vSphere fault itself."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        info = task.info
        if info.state == vim.TaskInfo.State.success:
            return info.result
        if info.state == vim.TaskInfo.State.error:
            raise info.error or vmodl.MethodFault(msg="unknown error")
        if time.monotonic() > deadline:
            raise CloudError(
                f"{action} did not finish within {timeout:g} s (task {task._moId})",
                ok_to_retry=True,
            )
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def wait_for_task(
    task: vim.Task,
    action: str,
    *,
    not_found: type[CpiError] | None = None,
    timeout: float = DEFAULT_TASK_TIMEOUT,
) -> Any:
    """Wait until ``task`` succeeds and return its result; raise a typed error if it fails."""
    try:
        return wait_raw(task, action, timeout=timeout)
    except (vmodl.MethodFault, vmodl.RuntimeFault) as fault:
        raise map_fault(fault, action, not_found=not_found) from None


def run_task(
    action: str,
    start: Callable[..., vim.Task],
    *args: Any,
    not_found: type[CpiError] | None = None,
    **kwargs: Any,
) -> Any:
    """Start a task with ``start(*args, **kwargs)`` and wait for it: one call for both halves."""
    task = vsphere_call(action, start, *args, not_found=not_found, **kwargs)
    return wait_for_task(task, action, not_found=not_found)
