"""Tile upgrade migrations: a ``.pivotal``'s ``migrations/v1/*.js``, run as Ops Manager runs them.

A tile author ships JavaScript files that change a product's stored
properties when an operator upgrades it (Tile Developer Guide, "Upgrading
Tiles"). Each file sets ``exports.migrate = function(input) {...}``;
``input`` is ``{"properties": {".properties.x": {"value": ...}, ".job.y":
{"value": ...}}}`` (collection records hold ``{field: {"value": ...}}``)
and the function returns the same shape, with properties renamed, changed,
added or deleted. Files run in lexicographic order (their names start with a
``YYYYMMDDHHMM`` timestamp), each on the output of the previous one; a
failure in any file aborts the whole chain, nothing of it is kept.

The functions Ops Manager provides are provided: ``console.log``,
``getCurrentProductVersion()``, ``generateGuid()`` (100 per file) and
``abortMigration(message)``.

The code runs in an embedded V8 (``mini-racer``): a fresh isolate per chain
with no module loader, no network and no file system, a time limit per file
and a heap limit. Errors name the file and the message. This module is pure:
no Django, no I/O, and it never logs a value (properties hold secrets).
"""

from __future__ import annotations

import json
import posixpath
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MIGRATIONS_DIR",
    "MAX_MIGRATION_BYTES",
    "MAX_MIGRATIONS",
    "MigrationError",
    "MigrationFile",
    "is_migration_member",
    "run_migrations",
]

#: Where migrations sit inside a ``.pivotal``.
MIGRATIONS_DIR = "migrations/v1"
MAX_MIGRATION_BYTES = 1024 * 1024
MAX_MIGRATIONS = 500
#: Per file: wall-clock seconds, and the isolate's heap for the whole chain.
TIMEOUT_SECONDS = 5.0
MAX_HEAP_BYTES = 128 * 1024 * 1024
#: Ops Manager's limit on ``generateGuid()`` per file.
MAX_GUIDS = 100

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.js")


class MigrationError(Exception):
    """A migration failed: ``file`` (``migrations/v1/<name>.js``) and ``message``."""

    def __init__(self, file: str, message: str):
        super().__init__(f"{file}: {message}")
        self.file = file
        self.message = message


@dataclass(frozen=True)
class MigrationFile:
    name: str  # the file name, e.g. 201606150900_rename-port.js
    source: str

    @property
    def path(self) -> str:
        return f"{MIGRATIONS_DIR}/{self.name}"


def is_migration_member(member: str) -> bool:
    """Whether a ``.pivotal`` member is a migration (directly in ``migrations/v1``)."""
    return posixpath.dirname(member) == MIGRATIONS_DIR and bool(
        _NAME.fullmatch(posixpath.basename(member))
    )


# The harness: one isolate, one function per file built with ``new Function``
# (a syntax error is then an exception we can word, not a failed eval), the
# Ops Manager globals reset per file. Results travel as JSON text so no V8
# object outlives the call.
_HARNESS = r"""
var __logs = [];
var __guids = [];
var __version = "";
var __Abort = function (message) { this.message = String(message); };
var console = {log: function () {
  __logs.push(Array.prototype.map.call(arguments, String).join(" "));
}};
function getCurrentProductVersion() { return __version; }
function generateGuid() {
  if (!__guids.length) { throw new Error("generateGuid() was called more than 100 times"); }
  return __guids.pop();
}
function abortMigration(message) { throw new __Abort(message); }
function __run(source, inputJson, version, guidsJson) {
  __version = version;
  __guids = JSON.parse(guidsJson);
  var input = JSON.parse(inputJson);
  try {
    var exports = {};
    var module = {exports: exports};
    new Function("exports", "module", source)(exports, module);
    var migrate = exports.migrate || (module.exports && module.exports.migrate);
    if (typeof migrate !== "function") {
      return JSON.stringify({error: "defines no exports.migrate function"});
    }
    var output = migrate(input);
    if (output === undefined) { output = input; }
    return JSON.stringify({output: output});
  } catch (e) {
    if (e instanceof __Abort) { return JSON.stringify({error: "aborted: " + e.message}); }
    var name = (e && e.name) ? e.name + ": " : "";
    var msg = (e && e.message !== undefined) ? e.message : String(e);
    return JSON.stringify({error: name + msg});
  }
}
"""


def _engine():
    try:
        # heavy: mini-racer loads V8 only when a tile brings migrations.
        from py_mini_racer import MiniRacer
    except ImportError as exc:  # pragma: no cover - the package is a dependency
        raise MigrationError(MIGRATIONS_DIR, f"no JavaScript engine: {exc}") from None
    return MiniRacer()


def _settle(ctx) -> None:
    """Wait for V8 to end a cancelled evaluation, so closing the isolate races nothing."""
    try:
        ctx.eval("0", timeout_sec=TIMEOUT_SECONDS)
    except Exception:  # noqa: BLE001 - the isolate is closed right after either way
        pass


def run_migrations(
    migrations: Iterable[MigrationFile],
    properties: Mapping[str, Any],
    current_version: str,
    *,
    timeout: float | None = None,
    max_heap: int | None = None,
) -> dict[str, Any]:
    """Run ``migrations`` in name order over ``{"properties": ...}``; the migrated properties.

    ``properties`` is the migration input's ``properties`` map (see the
    module docstring); ``current_version`` is what
    ``getCurrentProductVersion()`` answers (the version being upgraded
    from). Raises ``MigrationError`` naming the file for a syntax error, a
    throw or ``abortMigration``, a loop past ``timeout`` seconds, a heap past
    ``max_heap`` bytes, or an output that is not ``{"properties": {...}}``.
    """
    timeout = TIMEOUT_SECONDS if timeout is None else timeout
    max_heap = MAX_HEAP_BYTES if max_heap is None else max_heap
    files = sorted(migrations, key=lambda m: m.name)
    state: dict[str, Any] = {"properties": dict(properties)}
    if not files:
        return state["properties"]
    # heavy: mini-racer loads V8 only when a tile brings migrations.
    from py_mini_racer import JSEvalException, JSOOMException, JSTimeoutException

    ctx = _engine()
    try:
        ctx.eval(_HARNESS)
        for mf in files:
            guids = json.dumps([str(uuid.uuid4()) for _ in range(MAX_GUIDS)])
            call = (
                f"__run({json.dumps(mf.source)}, {json.dumps(json.dumps(state))}, "
                f"{json.dumps(str(current_version))}, {json.dumps(guids)})"
            )
            try:
                raw = ctx.eval(call, timeout_sec=timeout, max_memory=max_heap)
            except JSTimeoutException:
                _settle(ctx)
                raise MigrationError(
                    mf.path, f"did not finish within {timeout:g} seconds (stopped)"
                ) from None
            except JSOOMException:
                raise MigrationError(
                    mf.path, f"used more than {max_heap // (1024 * 1024)} MB of memory (stopped)"
                ) from None
            except JSEvalException as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else "failed"
                raise MigrationError(mf.path, first) from None
            result = json.loads(raw) if isinstance(raw, str) else {}
            if "error" in result:
                raise MigrationError(mf.path, str(result["error"]))
            output = result.get("output")
            if not isinstance(output, dict) or not isinstance(output.get("properties"), dict):
                raise MigrationError(
                    mf.path, "migrate(input) must return {properties: {...}} (the input's shape)"
                )
            for ref, entry in output["properties"].items():
                if not isinstance(entry, dict) or "value" not in entry:
                    raise MigrationError(
                        mf.path, f"properties['{ref}'] must be an object with a value key"
                    )
            state = {"properties": output["properties"]}
    finally:
        ctx.close()
    return state["properties"]
