"""Redaction of secrets in logs and API output.

Any mapping key that looks like a secret has its value replaced with
``((redacted))``; a logging filter applies the same to log records, and
``register_secret`` lets code name exact values (a vCenter password) that must
never appear in any log line.

YAML documents (director configs) are handled as text: ``register_yaml_secrets``
remembers the values under secret-looking keys of a decrypted config, and
``redact_yaml_text`` gives the config as a caller without the right to see
credentials may read it (BOSH's ``((redacted))`` in place of each such value).
"""

import logging
import re
import threading

import yaml

REDACTED = "((redacted))"
#: Keys whose values are secrets: ``password``, ``*_pass``, ``private_key``,
#: ``api_token``, ``credentials``, ``*_key_pem``, ``api_key``, and any key
#: naming a secret (``client_secret``, ``secret_access_key``).
SECRET_KEY_RE = re.compile(
    r"(pass(word)?|private_key|token|credentials?|key_pem|api_key)$|secret", re.I
)

_known_secrets: set[str] = set()
_lock = threading.Lock()


#: Cheap test whether a text may hold a secret-looking key at all (before parsing it).
_SECRET_HINT_RE = re.compile(r"pass|secret|private_key|token|credential|key_pem|api_key", re.I)


def register_secret(value) -> None:
    """Remember a secret value so that log lines containing it are redacted.

    Numbers count too (``password: 12345678`` in YAML is an int); values
    shorter than four characters are ignored (they would scrub every line).
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and len(value) >= 4:
        with _lock:
            _known_secrets.add(value)


def is_secret_key(key) -> bool:
    return isinstance(key, str) and bool(SECRET_KEY_RE.search(key))


def secret_values(tree) -> list:
    """The non-empty scalar values under secret-looking keys, anywhere in ``tree``.

    A secret key holding a map or list makes every scalar inside it secret
    (``credentials: {user: a, pass: b}``).
    """
    found: list = []

    def scalars(node) -> None:
        if isinstance(node, dict):
            for v in node.values():
                scalars(v)
        elif isinstance(node, list | tuple):
            for v in node:
                scalars(v)
        elif node not in (None, "") and not isinstance(node, bool):
            found.append(node)

    def walk(node) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if is_secret_key(k):
                    scalars(v)
                else:
                    walk(v)
        elif isinstance(node, list | tuple):
            for v in node:
                walk(v)

    walk(tree)
    return found


def _load_yaml(text: str):
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader


def register_yaml_secrets(text: str) -> None:
    """Register the values under secret-looking keys of a YAML document for log redaction.

    Used when a config (a cpi-config with the vCenter password) is
    decrypted. Text that does not parse registers nothing: it was validated
    when stored, and a log line cannot be matched against a broken document.
    """
    if not text or not _SECRET_HINT_RE.search(text):
        return
    try:
        doc = _load_yaml(text)
    except yaml.YAMLError:
        return
    for value in secret_values(doc):
        register_secret(value)


def redact_yaml_text(text: str) -> str:
    """A YAML document as a caller who may not see credentials reads it.

    Values under secret-looking keys become ``((redacted))``, and so does
    any registered secret inside other strings. Text without secrets comes
    back unchanged (comments and layout kept); text with secrets is dumped
    again from the redacted document. Text that does not parse as YAML is
    withheld as a whole, since its secrets cannot be found.
    """
    if not text:
        return text
    try:
        doc = _load_yaml(text)
    except yaml.YAMLError:
        return REDACTED
    redacted = redact(doc)
    if redacted == doc:
        return text
    return yaml.safe_dump(redacted, default_flow_style=False, sort_keys=False)


def redact(value):
    """A deep copy of ``value`` with secret-looking keys' values replaced."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if is_secret_key(k) and v not in (None, "") else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_text(text: str) -> str:
    with _lock:
        known = sorted(_known_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Scrub registered secret values from every log record, its traceback included."""

    def filter(self, record):
        if _known_secrets:
            try:
                message = record.getMessage()
            except Exception:  # a malformed record is logged as is
                return True
            scrubbed = redact_text(message)
            if scrubbed != message:
                record.msg, record.args = scrubbed, None
            if record.exc_info and not record.exc_text:
                # Format the traceback now (as Formatter would) so it can be scrubbed:
                # an exception message may quote a config line with a password.
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact_text(record.exc_text)
            if record.stack_info:
                record.stack_info = redact_text(record.stack_info)
        return True
