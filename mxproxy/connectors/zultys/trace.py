"""CSTA traces: every frame of one MX session as JSON lines, redacted, for an operator to file.

One line per frame: ``{"t": unix seconds, "dir": "out"|"in", "id": invoke id, "xml": payload}``
(``out`` = proxy → MX). Before a line is written, ``<pwd>`` and ``softPhonePwd`` values are
replaced by ``[redacted]`` and every ``mediaContent`` body by as many ``A``s (still valid base64,
so a replayed voicemail download has the recorded chunk sizes but no audio). With
``pseudonymise``, names, numbers, e-mail addresses and login names are replaced by stand-ins,
consistently within the trace (the same number is always the same stand-in, in commands and
replies alike), so a replay still matches requests to replies.

Traces are switched on per MX login for a time (``ZultysConnector.trace_user``, the admin route
``POST /trace``) and written to ``[mx] traceDir`` (mode 0600 files). ``mxproxy simulator --replay``
answers from such a file (``mxproxy.simulator.replay``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

from mxproxy.connectors.base import TraceRequest

log = logging.getLogger("mxproxy.connectors.zultys")

__all__ = ["TraceWriter", "redact_for_trace", "Pseudonyms", "PASSWORD_PATTERNS"]

#: Secrets that never leave the process, in any log or trace.
PASSWORD_PATTERNS = (
    (re.compile(r"<pwd>.*?</pwd>", re.S), "<pwd>[redacted]</pwd>"),
    (re.compile(r'softPhonePwd="[^"]*"'), 'softPhonePwd="[redacted]"'),
)
_MEDIA = re.compile(r"(<mediaContent>)([^<]*)(</mediaContent>)")
#: Elements whose text is a person's name, a number or an address.
_NAME_TEXT = ("firstName", "lastName", "callerName", "fromName", "name", "callingDisplayName",
              "alertingDisplayName", "answeringDisplayName", "serviceName", "note", "presenceNote",
              "description")
_NUMBER_TEXT = ("businessPhone", "homePhone", "cellPhone", "did", "DID", "extension", "deviceID", "deviceIdentifier",
                "deviceObject", "callingPartyNo", "originalCalledPartyNo", "calledDirectoryNumber", "callingDevice",
                "calledDevice", "transferredTo", "newDestination", "address", "userID", "serviceExtension")
_ADDRESS_TEXT = ("email", "userName")
_NAME_ATTRS = ("fromName", "callerName")
_NUMBER_ATTRS = ("from", "to", "ext")
_TEXT = re.compile(r"<(%s)((?:\s[^<>]*)?)>([^<]+)</\1>" % "|".join(_NAME_TEXT + _NUMBER_TEXT + _ADDRESS_TEXT))
_ATTR = re.compile(r'\s(%s)="([^"]+)"' % "|".join(_NAME_ATTRS + _NUMBER_ATTRS))
_NAMES = frozenset(_NAME_TEXT + _NAME_ATTRS)
_NUMBERS = frozenset(_NUMBER_TEXT + _NUMBER_ATTRS)


class Pseudonyms:
    """Consistent stand-ins: a name becomes ``Name7``, a number a number of the same length, an
    address ``user7@example.invalid``. Values the MX uses as codes (``0``, empty) are kept."""

    def __init__(self) -> None:
        self._map: dict[tuple[str, str], str] = {}

    def replace(self, kind: str, value: str) -> str:
        stripped = value.strip()
        if not stripped or stripped == "0" or (kind == "number" and not any(c.isdigit() for c in stripped)):
            return value
        key = (kind, stripped)
        known = self._map.get(key)
        if known is None:
            n = len(self._map) + 1
            if kind == "name":
                known = f"Name{n}"
            elif kind == "address":
                known = f"user{n}@example.invalid"
            else:
                digits = sum(c.isdigit() for c in stripped)
                known = "9" + str(n).zfill(max(digits - 1, 1)) if digits > 1 else str(n % 10)
            self._map[key] = known
        return known

    def apply(self, xml: str) -> str:
        def text(m: re.Match[str]) -> str:
            tag = m.group(1)
            kind = "name" if tag in _NAMES else "number" if tag in _NUMBERS else "address"
            return f"<{tag}{m.group(2)}>{self.replace(kind, m.group(3))}</{tag}>"

        def attr(m: re.Match[str]) -> str:
            kind = "name" if m.group(1) in _NAMES else "number"
            return f' {m.group(1)}="{self.replace(kind, m.group(2))}"'

        return _ATTR.sub(attr, _TEXT.sub(text, xml))


def _silence(b64: str) -> str:
    """Base64 of as many zero bytes as ``b64`` encodes: the chunk's size without its audio."""
    body = "".join(b64.split())
    padding = len(body) - len(body.rstrip("="))
    return "A" * (len(body) - padding) + "=" * padding


def redact_for_trace(xml: str, pseudonyms: Pseudonyms | None = None) -> str:
    """The payload as it may be filed: secrets and audio removed, optionally pseudonymised."""
    for pattern, replacement in PASSWORD_PATTERNS:
        xml = pattern.sub(replacement, xml)
    if "<mediaContent>" in xml:
        xml = _MEDIA.sub(lambda m: m.group(1) + _silence(m.group(2)) + m.group(3), xml)
    if pseudonyms is not None:
        xml = pseudonyms.apply(xml)
    return xml


class TraceWriter:
    """Appends one session's frames to ``<dir>/<login>-<UTC time>.jsonl`` until ``plan.until``.

    Writes are small and synchronous (line-buffered file), a cost only while a trace is on; an
    I/O error stops the trace (logged) and never the session."""

    def __init__(self, plan: TraceRequest, login: str) -> None:
        self.plan = plan
        self._pseudonyms = Pseudonyms() if plan.pseudonymise else None
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", login)[:64] or "session"
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        plan.directory.mkdir(parents=True, exist_ok=True)
        self.path = _unique(plan.directory / f"{safe}-{stamp}.jsonl")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file = os.fdopen(fd, "w", encoding="utf-8", buffering=1)
        self.closed = False
        log.info("CSTA trace of %s until %s: %s", login, time.strftime("%H:%M:%SZ", time.gmtime(plan.until)),
                 self.path)

    def record(self, direction: str, invoke_id: int, payload: bytes | str) -> None:
        if self.closed:
            return
        if time.time() >= self.plan.until:
            self.close()
            return
        xml = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        line = {"t": round(time.time(), 6), "dir": direction, "id": invoke_id,
                "xml": redact_for_trace(xml, self._pseudonyms)}
        try:
            self._file.write(json.dumps(line, ensure_ascii=False) + "\n")
        except OSError as exc:
            log.warning("CSTA trace %s stopped: %s", self.path, exc)
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self._file.close()
            except OSError:  # pragma: no cover - the disk went away
                pass


def _unique(path: Path) -> Path:
    n = 1
    candidate = path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate
