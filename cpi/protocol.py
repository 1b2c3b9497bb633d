"""BOSH's external CPI protocol: one JSON request in, one JSON response out.

Request (stdin)::

    {"method": "create_vm", "arguments": [...], "context": {"director_uuid": ...,
     "request_id": ..., <cpi-config properties overriding vcenters[0]>},
     "api_version": 2}

Response (stdout)::

    {"result": <any>, "error": null | {"type": "Bosh::Clouds::...", "message": ...,
     "ok_to_retry": bool}, "log": "<what the CPI logged while answering>"}

``handle_request`` does one exchange against a cpi.json document: ``info``
is answered without reading the vCenter settings or logging in (like the
real CPI); everything else builds the cloud from ``cloud.properties`` with the
request ``context`` merged into ``vcenters[0]``, dispatches, and logs out.
Errors that are not ``CpiError`` become ``Bosh::Clouds::CloudError`` with the
traceback in ``log``. The log never holds the vCenter password or env secrets.
"""

from __future__ import annotations

import io
import json
import logging
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from cpi import cloud_properties_of, load_cloud
from cpi.base import CloudError, CpiError, dispatch
from cpi.logging import is_secret_key, redact, redact_text

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CpiFactory = Callable[[Mapping[str, Any]], Any]


def _response(result: Any = None, error: CpiError | None = None, log: str = "") -> dict[str, Any]:
    return {"result": result, "error": error.to_dict() if error else None, "log": log}


def _secrets(cpi_json: Any, context: Any) -> list[str]:
    """Every password-like string in the config and context, for scrubbing the log."""
    found: list[str] = []

    def walk(value: Any, secret: bool = False) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, secret or (isinstance(k, str) and is_secret_key(k)))
        elif isinstance(value, list):
            for v in value:
                walk(v, secret)
        elif secret and isinstance(value, str):
            found.append(value)

    walk(cpi_json)
    walk(context)
    return found


def handle_request(
    request: str | Mapping[str, Any],
    cpi_json: Mapping[str, Any],
    *,
    cloud_factory: CpiFactory | None = None,
) -> dict[str, Any]:
    """Answer one CPI request; never raises."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger("cpi")
    previous_level = root.level
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    secrets: list[str] = []
    try:
        result, error = _handle(request, cpi_json, cloud_factory, secrets)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
    return _response(redact(result, secrets), error, redact_text(buffer.getvalue(), secrets))


def _handle(
    request: str | Mapping[str, Any],
    cpi_json: Mapping[str, Any],
    cloud_factory: CpiFactory | None,
    secrets: list[str],
) -> tuple[Any, CpiError | None]:
    log = logging.getLogger("cpi.protocol")
    try:
        req = json.loads(request) if isinstance(request, str | bytes) else request
    except ValueError as exc:
        return None, CpiError(f"Invalid request: not JSON: {exc}")
    if not isinstance(req, Mapping):
        return None, CpiError("Invalid request: must be a JSON object with method and arguments")
    method = req.get("method")
    arguments = req.get("arguments", [])
    context = req.get("context") or {}
    if not isinstance(method, str) or not method:
        return None, CpiError("Invalid request: 'method' must be a non-empty string")
    if not isinstance(arguments, list):
        return None, CpiError("Invalid request: 'arguments' must be a list")
    secrets.extend(_secrets(cpi_json, context))

    if method == "info":
        # heavy: the cpi.vsphere package loads pyVmomi; ``info`` answers without it.
        from cpi.vsphere.cloud import STEMCELL_FORMATS

        return {"stemcell_formats": list(STEMCELL_FORMATS), "api_version": 2}, None

    cloud = None
    try:
        # heavy: the cpi.vsphere package loads pyVmomi.
        from cpi.vsphere.config import merge_context

        plugin, properties = cloud_properties_of(cpi_json)
        merged = {"cloud": {"plugin": plugin, "properties": merge_context(properties, context)}}
        cloud = (cloud_factory or _default_factory)(merged)
        log.info(
            "%s request_id=%s",
            method,
            context.get("request_id", "-") if isinstance(context, Mapping) else "-",
        )
        return dispatch(cloud, method, arguments), None
    except CpiError as exc:
        log.info("%s failed: %s: %s", method, exc.type, exc.message)
        return None, exc
    except Exception as exc:  # noqa: BLE001 - the protocol must always answer
        log.error("%s failed unexpectedly:\n%s", method, traceback.format_exc())
        return None, CloudError(f"{type(exc).__name__}: {exc}")
    finally:
        if cloud is not None and hasattr(cloud, "close"):
            try:
                cloud.close()
            except Exception:  # noqa: BLE001 - logging out is a courtesy
                pass


def _default_factory(cpi_json: Mapping[str, Any]) -> Any:
    return load_cloud(cpi_json, keepalive_seconds=0)
