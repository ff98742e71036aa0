"""Log lines: redaction, context fields, text or JSON format, the log file and the access log.

Every handler redacts secrets, so no part of the program can leak one by accident. Context fields
(``user``, ``request_id``, ``instance``) come from a context variable that the API middleware and
the MX session owner tasks set; they ride on every line logged under them: JSON lines carry them as
fields, text lines as a ``[user=… request_id=…]`` suffix.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from pythonjsonlogger.json import JsonFormatter

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ACCESS_LOGGER = "mxproxy.access"
SIGN_IN_LOGGER = "mxproxy.signin"
CONTEXT_FIELDS = ("instance", "user", "request_id")

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# redaction

_REDACTIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?i)(<(pwd|password)>)(.*?)(</\2>)", re.S), r"\1***\4"),
    (re.compile(r"(?i)\b(password|pwd|passwd|secret|softPhonePwd|client_secret|storeKey|adminToken)"
                r"(\s*[=:]\s*|\"\s*:\s*\"|'\s*:\s*')([^\s&\"',;}<]+)"), r"\1\2***"),
    (re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/]+=*"), r"\1 ***"),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]+"), "***jwt***"),
]


def redact(text: str) -> str:
    """Blank out passwords, ``<pwd>`` elements, bearer/basic credentials and JWTs in a log line."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Runs on every handler, so no part of the program can leak a secret into a log by accident."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not kill logging
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


# --------------------------------------------------------------------------------------------
# context fields

_fields: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("mxproxy_log_fields", default=None)
_process_fields: dict[str, str] = {}


def set_instance(name: str) -> None:
    """The ``instance`` field of every line of this process (several instances share a store)."""
    _process_fields["instance"] = name


@contextmanager
def log_context(**fields: str) -> Iterator[dict[str, str]]:
    """Fresh context fields for the code run inside (a request, an owner task); ``annotate``
    adds to them later. Fresh, not merged: a task started during a request must not keep that
    request's id forever."""
    current = {k: v for k, v in fields.items() if v}
    token = _fields.set(current)
    try:
        yield current
    finally:
        _fields.reset(token)


def annotate(**fields: str) -> None:
    """Add fields to the current context (e.g. ``user`` once a request's token is verified)."""
    current = _fields.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v})


class ContextFilter(logging.Filter):
    """Copies the context fields onto each record (as attributes; JSON lines show them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _fields.get()
        for name, value in ((current or {}) | _process_fields).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [user=… request_id=…]`` (the instance only in JSON)."""

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(f"{n}={getattr(record, n)}" for n in ("user", "request_id") if hasattr(record, n))
        if not context:
            return text
        first, sep, rest = text.partition("\n")  # after the message, before a traceback
        return f"{first} [{context}]{sep}{rest}"


def json_formatter() -> logging.Formatter:
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, the
    context fields, ``exc_info`` for a traceback, and any ``extra`` a call site passes."""
    return JsonFormatter("{levelname}{name}{message}", style="{", timestamp="time",
                         rename_fields={"levelname": "level", "name": "logger"})


def formatter(name: str) -> logging.Formatter:
    return json_formatter() if name == "json" else TextFormatter()


# --------------------------------------------------------------------------------------------
# set-up


def open_log_file(path: Path) -> logging.FileHandler:
    """The log file, created 0600 (it names users and addresses) and appended to."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    return logging.FileHandler(path, encoding="utf-8")


def redact_every_handler() -> None:
    """Put the redaction filter on every root handler: every sub-command (demo, simulator, import)
    logs through them, not only ``serve``, which also calls :func:`configure_logging`."""
    for h in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in h.filters):
            h.addFilter(RedactingFilter())


def configure_logging(config: Any, level: int | None = None) -> logging.Handler | None:
    """Apply ``[log]`` to every handler of the root logger (stderr included), add the log file
    served at ``GET /debug/log`` when it can be opened, redact and annotate every handler.
    Returns the file handler (None when there is none)."""
    root = logging.getLogger()
    if level is not None:
        root.setLevel(level)
    log_config = getattr(config, "log", None)
    fmt = formatter(getattr(log_config, "format", "text"))
    handler: logging.FileHandler | None = None
    if config.log_name:
        path = config.resolve_path(config.log_name)
        try:
            handler = open_log_file(path)
        except OSError as exc:
            log.warning("log file %s is not writable (%s); logging to stderr only", path, exc.strerror)
        else:
            root.addHandler(handler)
    redact_every_handler()
    for h in root.handlers:
        h.setFormatter(fmt)
        if not any(isinstance(f, ContextFilter) for f in h.filters):
            h.addFilter(ContextFilter())
    # two uvicorn servers share the process: their "Started server process" / "Shutting down"
    # lines came twice and said less than ours ("public API listening on …"); errors still show
    if root.getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    return handler


__all__ = [
    "ACCESS_LOGGER", "ContextFilter", "LOG_FORMAT", "RedactingFilter", "SIGN_IN_LOGGER",
    "annotate", "configure_logging", "formatter", "log_context", "open_log_file", "redact",
    "redact_every_handler", "set_instance",
]
