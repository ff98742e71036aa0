"""Raw CSTA frames for tests: write and read frames by hand, independent of the project's codec
(``mxproxy.connectors.zultys.framing``), so the wire format is checked by a second implementation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass

__all__ = ["RawCSTA", "RawFrame", "build_frame", "hashed_password"]

READ_TIMEOUT = 5.0


@dataclass
class RawFrame:
    invoke_id: int
    payload: bytes
    root: ET.Element  # namespaces stripped

    @property
    def name(self) -> str:
        return self.root.tag

    def text(self, path: str, default: str = "") -> str:
        el = self.root.find(path)
        return el.text or "" if el is not None else default


def build_frame(invoke_id: int, xml: str | bytes) -> bytes:
    """8-byte header (two zero bytes, big-endian total length, 4 ASCII digits) + payload."""
    payload = xml.encode("utf-8") if isinstance(xml, str) else xml
    return b"\x00\x00" + struct.pack(">H", len(payload) + 8) + b"%04d" % invoke_id + payload


def hashed_password(password: str) -> str:
    """base64(sha1(password)) + "\\n", as MX clients send it (spec §2.1)."""
    return base64.b64encode(hashlib.sha1(password.encode()).digest()).decode() + "\n"


def _parse(payload: bytes) -> ET.Element:
    root = ET.fromstring(payload)
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith("{"):
            el.tag = el.tag.rpartition("}")[2]
    return root


_CONTEXT: ssl.SSLContext | None = None


def _client_context() -> ssl.SSLContext:
    """One shared no-verification context (building one per connection costs ~30 ms of CA loading)."""
    global _CONTEXT
    if _CONTEXT is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        _CONTEXT = ctx
    return _CONTEXT


class RawCSTA:
    """One hand-driven CSTA connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> "RawCSTA":
        reader, writer = await asyncio.open_connection(host, port, ssl=_client_context(), limit=1 << 20)
        return cls(reader, writer)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, invoke_id: int, xml: str | bytes) -> None:
        await self.send_raw(build_frame(invoke_id, xml))

    async def read(self, timeout: float = READ_TIMEOUT) -> RawFrame:
        async def one() -> RawFrame:
            header = await self.reader.readexactly(8)
            length = struct.unpack(">H", header[2:4])[0]
            assert length >= 8, f"bad frame length {length}"
            invoke = header[4:8]
            assert invoke.isdigit(), f"bad invoke id {invoke!r}"
            payload = await self.reader.readexactly(length - 8)
            return RawFrame(int(invoke), payload, _parse(payload))

        return await asyncio.wait_for(one(), timeout)

    async def read_until(self, name: str, timeout: float = READ_TIMEOUT) -> RawFrame:
        """Skip frames until one whose root is ``name``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.read(max(0.01, deadline - loop.time()))
            if frame.name == name:
                return frame

    async def read_all(self, quiet: float = 0.2) -> list[RawFrame]:
        """Every frame until the line stays quiet for ``quiet`` seconds."""
        frames = []
        while True:
            try:
                frames.append(await self.read(quiet))
            except asyncio.TimeoutError:
                return frames

    async def expect_silence(self, seconds: float = 0.2) -> None:
        try:
            frame = await self.read(seconds)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"unexpected frame {frame.invoke_id:04d} {frame.payload[:200]!r}")

    async def is_closed_by_peer(self, timeout: float = READ_TIMEOUT) -> bool:
        """True when the server ends the connection (EOF or reset) within ``timeout``."""
        try:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
        except (ConnectionError, ssl.SSLError):
            return True
        except asyncio.TimeoutError:
            return False
        if not data:
            return True
        return await self.is_closed_by_peer(timeout)

    async def login(self, user: str, password: str, *, invoke_id: int = 1, hashed: bool = True,
                    **attrs: str) -> RawFrame:
        """Send a loginRequest and return the reply frame (``loginResponce`` or ``loginFailed``)."""
        pwd = hashed_password(password).replace("\n", "&#xA;") if hashed else password
        extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
        await self.send(invoke_id, f'<loginRequest type="User" platform="iPhone" version="7.0"{extra}>'
                                   f"<userName>{user}</userName><pwd>{pwd}</pwd></loginRequest>")
        while True:
            frame = await self.read()
            if frame.invoke_id == invoke_id:
                return frame

    async def close(self) -> None:
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 1)
        except (asyncio.TimeoutError, ConnectionError, ssl.SSLError, OSError):
            pass
