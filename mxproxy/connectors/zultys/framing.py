"""CSTA-over-TLS framing (spec §1.2): 8-byte header, then one XML document.

    0..1  0x00 0x00 (written as zero, never checked)
    2..3  total length including the header, unsigned big-endian
    4..7  invoke id, four ASCII decimal digits

Shared by the client and the simulator, so both sides enforce the same limits.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Container

HEADER_SIZE = 8
MAX_FRAME = 0xFFFF
MAX_PAYLOAD = MAX_FRAME - HEADER_SIZE
EVENT_ID = 9999
KEEPALIVE_ID = 0
MIN_COMMAND_ID = 1
MAX_COMMAND_ID = 9998
KEEPALIVE_FRAME = b"\x00\x00\x00\x15" + b"0000" + b"<keepalive />"


class FrameError(ValueError):
    """A frame that breaks the framing rules; the connection cannot continue after it."""


@dataclass(frozen=True, slots=True)
class Frame:
    invoke_id: int
    payload: bytes


def encode_frame(invoke_id: int, payload: bytes | str) -> bytes:
    """Build a frame; refuse payloads that would overflow the 16-bit length (spec §9.11)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    if not 0 <= invoke_id <= 9999:
        raise FrameError(f"invoke id {invoke_id} out of range 0..9999")
    size = len(payload) + HEADER_SIZE
    if size > MAX_FRAME:
        raise FrameError(f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD}-byte frame limit")
    return b"\x00\x00" + size.to_bytes(2, "big") + b"%04d" % invoke_id + payload


def decode_header(header: bytes) -> tuple[int, int]:
    """Return (payload length, invoke id) from an 8-byte header, rejecting malformed ones."""
    if len(header) != HEADER_SIZE:
        raise FrameError("short frame header")
    size = int.from_bytes(header[2:4], "big")
    if size < HEADER_SIZE:
        raise FrameError(f"frame length {size} is shorter than its header")
    digits = header[4:8]
    if not digits.isdigit():
        raise FrameError(f"invoke id {digits!r} is not four decimal digits")
    return size - HEADER_SIZE, int(digits)


async def read_frame(reader: asyncio.StreamReader) -> Frame:
    """Read exactly one frame. Raises ``asyncio.IncompleteReadError`` at EOF, ``FrameError`` on junk."""
    header = await reader.readexactly(HEADER_SIZE)
    length, invoke_id = decode_header(header)
    payload = await reader.readexactly(length) if length else b""
    return Frame(invoke_id, payload)


class FrameDecoder:
    """Incremental decoder for callers that receive arbitrary byte chunks (tests, protocols)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while len(self._buf) >= HEADER_SIZE:
            length, invoke_id = decode_header(bytes(self._buf[:HEADER_SIZE]))
            end = HEADER_SIZE + length
            if len(self._buf) < end:
                break
            frames.append(Frame(invoke_id, bytes(self._buf[HEADER_SIZE:end])))
            del self._buf[:end]
        return frames

    @property
    def pending(self) -> int:
        return len(self._buf)


class InvokeIds:
    """Allocates command invoke ids 1…9998, wrapping after 9998 and skipping ids still in use
    (a reply to the old command could otherwise complete the new one, spec §13)."""

    __slots__ = ("_last",)

    def __init__(self, last: int = 0) -> None:
        self._last = last

    def next(self, in_use: Container[int]) -> int:
        iid = self._last
        for _ in range(MAX_COMMAND_ID):
            iid = iid + 1 if iid < MAX_COMMAND_ID else MIN_COMMAND_ID
            if iid not in in_use:
                self._last = iid
                return iid
        raise FrameError(f"all {MAX_COMMAND_ID} invoke ids are waiting for replies")
