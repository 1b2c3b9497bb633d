"""Redaction of secrets in logs and API output.

Any mapping key that looks like a secret has its value replaced with
``((redacted))``; a logging filter applies the same to log records, and
``register_secret`` lets code name exact values (a vCenter password) that must
never appear in any log line.
"""

import logging
import re
import threading

REDACTED = "((redacted))"
SECRET_KEY_RE = re.compile(
    r"(pass(word)?|secret|private_key|token|credential|key_pem|api_key)$", re.I
)

_known_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value) -> None:
    """Remember a secret value so that log lines containing it are redacted."""
    if isinstance(value, str) and len(value) >= 4:
        with _lock:
            _known_secrets.add(value)


def is_secret_key(key) -> bool:
    return isinstance(key, str) and bool(SECRET_KEY_RE.search(key))


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
    """Scrub registered secret values from every log record."""

    def filter(self, record):
        if _known_secrets:
            try:
                message = record.getMessage()
            except Exception:  # a malformed record is logged as is
                return True
            scrubbed = redact_text(message)
            if scrubbed != message:
                record.msg, record.args = scrubbed, None
        return True
