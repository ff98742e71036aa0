"""A test's reader of ``GET /events``: a real httpx stream over loopback (no in-process
transport, which would hide buffering), parsed frame by frame as an ``EventSource`` would."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import httpx

#: Bounds a broken run only; no test asserts how long anything takes.
FRAME_LIMIT = 10.0


@dataclass
class Frame:
    event: str | None = None
    id: str | None = None
    data: str | None = None
    retry: str | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        return json.loads(self.data or "null")


def parse_frame(text: str) -> Frame:
    frame = Frame()
    for line in text.split("\n"):
        if line.startswith(":"):
            frame.comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            frame.data = value if frame.data is None else frame.data + "\n" + value
        elif name in ("event", "id", "retry"):
            setattr(frame, name, value)
    return frame


class EventReader:
    """Frames of one open stream; ``raw`` keeps every byte received (buffering checks)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._chunks = response.aiter_raw()
        self._buffer = b""
        self.raw = b""
        self.finished = False

    async def next(self, limit: float = FRAME_LIMIT) -> Frame:
        """The next frame; AssertionError when the stream ended first."""
        while b"\n\n" not in self._buffer:
            try:
                chunk = await asyncio.wait_for(self._chunks.__anext__(), limit)
            except StopAsyncIteration:
                self.finished = True
                raise AssertionError(f"the stream ended; unread: {self._buffer!r}") from None
            self.raw += chunk
            self._buffer += chunk
        text, _, self._buffer = self._buffer.partition(b"\n\n")
        return parse_frame(text.decode("utf-8"))

    async def next_event(self, limit: float = FRAME_LIMIT) -> Frame:
        """The next frame that is an event or a control frame (comments and bare ids skipped)."""
        while True:
            frame = await self.next(limit)
            if frame.event is not None or frame.data is not None:
                return frame

    async def until(self, event: str, limit: float = FRAME_LIMIT) -> list[Frame]:
        """Event frames up to and including the first ``event``."""
        frames: list[Frame] = []
        while True:
            frame = await self.next_event(limit)
            frames.append(frame)
            if frame.event == event:
                return frames

    async def until_heartbeat(self, limit: float = FRAME_LIMIT) -> list[Frame]:
        """Event frames before the next heartbeat: a heartbeat goes out only after a quiet period,
        so nothing else was waiting when it came."""
        frames: list[Frame] = []
        while True:
            frame = await self.next(limit)
            if "heartbeat" in frame.comments:
                return frames
            if frame.event is not None:
                frames.append(frame)

    async def at_end(self, limit: float = FRAME_LIMIT) -> bool:
        """True once the server has completed the response (no byte after the last frame)."""
        try:
            chunk = await asyncio.wait_for(self._chunks.__anext__(), limit)
        except StopAsyncIteration:
            self.finished = True
            return self._buffer == b""
        self._buffer += chunk
        return False


@contextlib.asynccontextmanager
async def open_stream(client: httpx.AsyncClient, url: str, token: str | None, *, params: dict[str, str] | None = None,
                      headers: dict[str, str] | None = None) -> AsyncIterator[EventReader]:
    """``GET url`` streamed; the response must be 200 ``text/event-stream``."""
    sent = {"Accept": "text/event-stream", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with client.stream("GET", url, params=params, headers=sent,
                             timeout=httpx.Timeout(FRAME_LIMIT, read=None)) as response:
        if response.status_code != 200:
            await response.aread()
            raise AssertionError(f"GET {url}: {response.status_code} {response.text}")
        assert response.headers["content-type"].startswith("text/event-stream"), response.headers
        yield EventReader(response)
