"""The log lines on stderr: their format, their level, and the secrets they never show.

Every module logs to a child of the ``exporter`` logger; one handler on it writes stderr, in
one of two formats. ``text``, the default, is for people: ``HH:MM:SS LEVEL message``, and the
CLI's own lines (``say``) as ``genesys-export: message``. ``json`` (``--log-format json``,
``output.log_format``) is one object a line for Loki or Elasticsearch: ``time`` (UTC, ISO
8601), ``level``, ``logger``, ``message``, and the structured fields the line was logged with
(``extra=``: ``dataset``, ``window``, ``job_id``, ...). ``-v`` shows the debug lines: what a
person needs to see why a run is slow or stuck (jobs, their states, commits, pauses).

The redaction filter sits on the handler, so it sees every line whatever logger wrote it: a
secret it was given shows as ``***``, in the message and in every field.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

PROG = "genesys-export"
ROOT = "exporter"
_SAY = logging.getLogger(f"{ROOT}.cli")
_PLAIN = "plain"  # the attribute marking a say() line
# What every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(
    [*logging.LogRecord("", 0, "", 0, "", None, None).__dict__, "message", "asctime", _PLAIN]
)
_LEVELS = {"error": logging.ERROR, "warning": logging.WARNING}


def setup(*, verbose: bool = False, json: bool = False) -> None:
    """Send the exporter's lines to stderr, debug ones too with ``verbose``, as JSON objects
    with ``json``. Replaces an earlier setup and its redaction."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    root = logging.getLogger(ROOT)
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


def redact(secrets: Iterable[str]) -> None:
    """From now on no line shows any of ``secrets`` (those of 4 characters or more)."""
    for handler in logging.getLogger(ROOT).handlers:
        handler.addFilter(RedactSecrets(secrets))


def say(message: str) -> None:
    """A line for the person running the command: ``genesys-export: message`` in the text
    format. Its level is what its first word says (``error:``, ``warning:``), else info."""
    level = _LEVELS.get(message.partition(":")[0], logging.INFO)
    _SAY.log(level, "%s", message, extra={_PLAIN: True})


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a line was logged with."""
    return {key: value for key, value in record.__dict__.items() if key not in _STANDARD}


class TextFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL message``; a say() line as ``genesys-export: message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, _PLAIN, False):
            return f"{PROG}: {record.getMessage()}"
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, then the line's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _instant(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def _instant(created: float) -> str:
    """``2026-11-01T12:00:00.123Z``."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class RedactSecrets(logging.Filter):
    """Defence in depth: no line carries a secret, whatever formatted it or whichever field
    holds it."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._holds_secret(message):
            record.msg, record.args = self._hide(message), None
        for key, value in fields(record).items():
            if isinstance(value, str) and self._holds_secret(value):
                setattr(record, key, self._hide(value))
        return True

    def _holds_secret(self, text: str) -> bool:
        return any(secret in text for secret in self._secrets)

    def _hide(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
