"""One normalised event: what an SSE ``data:`` line and a webhook body carry.

The JSON is computed once per event (``json_bytes``), however many streams and webhook
subscriptions receive it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

CALL_TYPES: tuple[str, ...] = (
    "call.ringing", "call.dialing", "call.answered", "call.held", "call.resumed", "call.transferred", "call.ended",
)
#: Every event type, in the order docs/events.md lists them.
EVENT_TYPES: tuple[str, ...] = (
    *CALL_TYPES, "voicemail.new", "voicemail.read", "presence.changed", "contacts.changed",
)


#: one encoder for every event (``json.dumps`` with options builds a new one per call)
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False).encode
_second: list[Any] = [None, ""]  # the last whole second formatted, and its text


def rfc3339(seconds: float) -> str:
    """Unix seconds as RFC 3339 UTC with milliseconds (``2026-12-01T11:20:00.123Z``).

    The date and time of the last whole second are kept: events come in bursts within a second,
    and formatting a date was 40 % of normalising a call event (bench/event_bus.py)."""
    frac, whole = math.modf(seconds)  # microseconds rounded as datetime.fromtimestamp does
    micro = round(frac * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    elif micro < 0:
        whole, micro = whole - 1, micro + 1_000_000
    if _second[0] != whole:
        _second[1] = dt.datetime.fromtimestamp(whole, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _second[0] = whole
    return f"{_second[1]}.{micro // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Event:
    """``id`` increases per user (``mxproxy.events.ids``); ``user`` is the store's user key
    (``users.login``); ``time`` is when the MX event arrived (Unix s); ``data`` is the
    type-specific object (docs/events.md). Treat ``data`` as read-only: every receiver shares it.
    ``key`` is not part of the JSON."""

    id: int
    type: str
    user: str
    time: float
    data: Mapping[str, Any]
    #: the real transition this event reports, named the same by every instance that saw it (a
    #: handover overlap: ids differ there); for presence and contacts changes it is unique per event
    key: str = ""
    _json: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def envelope(self) -> dict[str, Any]:
        """The JSON object of SSE ``data:`` lines and webhook bodies (a fresh dict each call)."""
        return {"id": self.id, "type": self.type, "time": rfc3339(self.time), "user": self.user,
                "data": dict(self.data)}

    def json_bytes(self) -> bytes:
        """Compact UTF-8 JSON of ``envelope()``, computed on first use and kept."""
        cached = self._json
        if cached is None:
            cached = _encode(self.envelope()).encode()
            object.__setattr__(self, "_json", cached)
        return cached
