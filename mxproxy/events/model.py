"""One normalised event: what an SSE ``data:`` line and a webhook body carry.

The JSON is computed once per event (``json_bytes``), however many streams and webhook
subscriptions receive it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

CALL_TYPES: tuple[str, ...] = (
    "call.ringing", "call.dialing", "call.answered", "call.held", "call.resumed", "call.transferred", "call.ended",
)
#: Every event type, in the order docs/events.md lists them.
EVENT_TYPES: tuple[str, ...] = (
    *CALL_TYPES, "voicemail.new", "voicemail.read", "presence.changed", "contacts.changed",
)


def rfc3339(seconds: float) -> str:
    """Unix seconds as RFC 3339 UTC with milliseconds (``2026-12-01T11:20:00.123Z``)."""
    when = dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Event:
    """``id`` increases per user (``mxproxy.events.ids``); ``user`` is the store's user key
    (``users.login``); ``time`` is when the MX event arrived (Unix s); ``data`` is the
    type-specific object (docs/events.md). Treat ``data`` as read-only: every receiver shares it."""

    id: int
    type: str
    user: str
    time: float
    data: Mapping[str, Any]
    _json: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def envelope(self) -> dict[str, Any]:
        """The JSON object of SSE ``data:`` lines and webhook bodies (a fresh dict each call)."""
        return {"id": self.id, "type": self.type, "time": rfc3339(self.time), "user": self.user,
                "data": dict(self.data)}

    def json_bytes(self) -> bytes:
        """Compact UTF-8 JSON of ``envelope()``, computed on first use and kept."""
        cached = self._json
        if cached is None:
            cached = json.dumps(self.envelope(), separators=(",", ":"), ensure_ascii=False).encode()
            object.__setattr__(self, "_json", cached)
        return cached
