"""Server-Sent Events on the wire: the frames of ``GET /events`` and the response that writes them.

The frames (https://html.spec.whatwg.org/multipage/server-sent-events.html):

* an event: ``id: <id>``, ``event: <type>``, ``data: <Event.json_bytes()>`` — compact JSON never
  holds a raw line break, so one ``data:`` line carries it;
* ``event: gap`` / ``event: end``: a small JSON object, and no ``id:`` (an ``EventSource`` keeps
  the id of the last real event, which is what it must resume from);
* ``: heartbeat`` comments, which every client ignores and every proxy sees as traffic;
* ``retry: <ms>`` once at the start, the reconnection delay of ``EventSource``.

``SSEResponse`` is Starlette's own ``StreamingResponse`` (chosen over sse-starlette by measurement:
docs/benchmarks.md, "Live event stream") with three changes: each write is bounded by
``[sse] writeTimeout`` (a reader that stopped reading is cut, it does not hold us for ever), a
close callback that runs however the response ended, and the headers that keep proxies from
buffering.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator, Callable

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

log = logging.getLogger("mxproxy.sse")

MEDIA_TYPE = "text/event-stream"
HEARTBEAT = b": heartbeat\n\n"
WRITE_TIMEOUT = "write-timeout"  # the close reason of a stream whose reader took no write in time
STREAM_HEADERS = {
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # nginx: pass each write on at once
}


def event_frame(event_id: int, event_type: str, data: bytes) -> bytes:
    """One event: what an ``EventSource`` dispatches as ``MessageEvent(type, data, lastEventId)``."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, event_type.encode("utf-8"), data)


def control_frame(name: str, data: dict[str, Any]) -> bytes:
    """``gap`` or ``end``: JSON data, no ``id:`` (the client's last event id stays the last event's)."""
    return b"event: %s\ndata: %s\n\n" % (name.encode("ascii"),
                                          json.dumps(data, separators=(",", ":")).encode("utf-8"))


def end_frame(reason: str, last_id: int | None) -> bytes:
    """The last frame of a stream ended by us: why, and the id to resume from (null: none yet)."""
    return control_frame("end", {"reason": reason, "lastId": last_id})


def retry_frame(seconds: float) -> bytes:
    return b"retry: %d\n\n" % max(0, round(seconds * 1000))


def at_frame_boundary(tail: bytes) -> bool:
    """The bytes relayed so far end a frame (a blank line): another frame may follow cleanly."""
    return tail.endswith(b"\n\n") or tail == b""


class SSEResponse(StreamingResponse):
    """``StreamingResponse`` for ``text/event-stream`` with a bounded write time (see the module);
    ``on_close(reason)`` runs once the response is over, however it ended (even before the first
    write): ``"write-timeout"`` when the reader took no write in time, else ``"closed"``."""

    def __init__(self, frames: AsyncIterator[bytes], *, write_timeout: float,
                 on_close: Callable[[str], None] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(frames, media_type=MEDIA_TYPE, headers={**STREAM_HEADERS, **(headers or {})})
        self.write_timeout = write_timeout
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.on_close is not None:
                self.on_close("closed")

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        timeout = self.write_timeout
        frames = self.body_iterator
        try:
            async for chunk in frames:
                async with asyncio.timeout(timeout):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except TimeoutError:
            # returning without completing the response makes the server close the connection
            # (uvicorn logs that line too); nothing more can be written to this reader anyway
            log.warning("sse: a reader took no write for %.0fs; its stream is cut", timeout)
            if self.on_close is not None:
                self.on_close(WRITE_TIMEOUT)
            aclose = getattr(frames, "aclose", None)
            if aclose is not None:
                await aclose()
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


__all__ = ["HEARTBEAT", "MEDIA_TYPE", "SSEResponse", "at_frame_boundary", "control_frame", "end_frame",
           "event_frame", "retry_frame"]
