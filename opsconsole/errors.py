"""Errors every layer raises and every edge (API, views, commands) answers.

They sit at the bottom so nobody imports a service module for an error class:
``cpi`` stays free of them, ``director`` and ``tiles`` raise them, and the API
maps ``status`` to the HTTP answer (opsconsole/apierrors.py).
"""

from __future__ import annotations


class ServiceError(Exception):
    """Refused input or state; ``errors`` maps a field or manifest path to messages."""

    status = 422

    def __init__(self, errors: dict | str, status: int | None = None):
        if isinstance(errors, str):
            errors = {"base": [errors]}
        self.errors = {k: (v if isinstance(v, list) else [v]) for k, v in errors.items()}
        if status is not None:
            self.status = status
        super().__init__("; ".join(m for msgs in self.errors.values() for m in msgs))


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class NotYetImplemented(ServiceError, NotImplementedError):
    """A director operation whose execution is not built yet (API: 501)."""

    status = 501
