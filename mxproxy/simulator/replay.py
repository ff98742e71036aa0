"""``mxproxy simulator --replay TRACE``: an MX that answers from a recorded CSTA trace.

A trace (``mxproxy.connectors.zultys.trace``) is cut into *segments*: one command the proxy sent
and every frame the MX sent after it, up to the next command. When a client sends a command, the
replay picks the next unused segment whose command has the same **shape** — root name, attributes
with their values (so ``iq get addressbook index="2"`` finds page 2) and the set of child element
paths (so a ``MailReceiveIncoming`` with ``nextChunk`` is not the first request) — else the next
one with the same root name (and, for ``iq``, the same ``type``/``id``); once a shape's segments
are used up, its last one answers again. The recorded frames go out in their order: frames on
the recorded command's invoke id (or on the id of an earlier command) get the live id, 9999 and
0000 stay, so recorded events are sent right after the reply they followed. Text values are not
compared (call ids, numbers and pseudonyms differ from run to run).

Each connection replays from the start of the trace. A trace that starts mid-session (tracing
switched on for a live session) has no login: the replay then answers ``loginRequest`` with a
plain ``loginResponce``. ``logout`` closes the connection.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element

from mxproxy.connectors.errors import MXProtocolError
from mxproxy.connectors.zultys.framing import EVENT_ID, KEEPALIVE_ID, FrameError, encode_frame, read_frame
from mxproxy.connectors.zultys.xml import parse
from mxproxy.simulator.tls import CertPair, fingerprint, self_signed, server_context

log = logging.getLogger("mxproxy.simulator.replay")

__all__ = ["ReplaySimulator", "ReplayTrace", "TraceError", "load_trace"]

Shape = tuple[object, ...]
DEFAULT_LOGIN = '<loginResponce Code="0" sn="replay" apiversion="11" ext="" userId="0">Login OK</loginResponce>'


class TraceError(ValueError):
    """A trace file that cannot be replayed; the message names the line."""


@dataclass
class Segment:
    command: str
    invoke_id: int
    exact: Shape
    loose: Shape
    replies: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class ReplayTrace:
    preamble: list[tuple[int, str]]  # MX frames before the first command
    segments: list[Segment]

    @property
    def has_login(self) -> bool:
        return any(s.exact[0] == "loginRequest" for s in self.segments)


def _paths(el: Element, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for child in el:
        path = f"{prefix}/{child.tag}"
        out.add(path)
        out |= _paths(child, path)
    return out


def shapes(root: Element) -> tuple[Shape, Shape]:
    """(exact, loose) shape of a command, as described in the module docstring."""
    exact = (root.tag, tuple(sorted(root.attrib.items())), tuple(sorted(_paths(root))))
    loose = (root.tag, root.get("type"), root.get("id")) if root.tag == "iq" else (root.tag,)
    return exact, loose


def load_trace(path: str | Path) -> ReplayTrace:
    preamble: list[tuple[int, str]] = []
    segments: list[Segment] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise TraceError(f"cannot read trace {path}: {exc.strerror or exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            direction, invoke_id, xml = entry["dir"], int(entry["id"]), entry["xml"]
            if direction not in ("in", "out") or not isinstance(xml, str) or not 0 <= invoke_id <= EVENT_ID:
                raise ValueError("bad dir, id or xml")
        except (ValueError, KeyError, TypeError) as exc:
            raise TraceError(f"{path}:{number}: not a trace line ({exc})") from None
        if direction == "in":
            (segments[-1].replies if segments else preamble).append((invoke_id, xml))
            continue
        try:
            root = parse(xml.encode("utf-8"))
        except MXProtocolError as exc:
            raise TraceError(f"{path}:{number}: {exc}") from None
        if root.tag == "keepalive":
            continue
        exact, loose = shapes(root)
        segments.append(Segment(xml, invoke_id, exact, loose))
    if not segments:
        raise TraceError(f"{path}: no command in the trace")
    return ReplayTrace(preamble, segments)


class _Cursor:
    """Which segments one connection has used."""

    def __init__(self, trace: ReplayTrace) -> None:
        self.unused: dict[Shape, collections.deque[Segment]] = collections.defaultdict(collections.deque)
        for seg in trace.segments:
            self.unused[seg.exact].append(seg)
            self.unused[seg.loose].append(seg)
        self.used: set[int] = set()
        self.last: dict[Shape, Segment] = {}

    def take(self, root: Element) -> Segment | None:
        for shape in shapes(root):
            queue = self.unused.get(shape)
            while queue:
                seg = queue.popleft()
                if id(seg) not in self.used:
                    self.used.add(id(seg))
                    self.last[shape] = seg
                    return seg
            if shape in self.last:
                return self.last[shape]
        return None


class ReplaySimulator:
    """A TLS server answering every connection from ``trace``."""

    def __init__(self, trace: ReplayTrace, *, host: str = "127.0.0.1", port: int = 0,
                 cert: CertPair | None = None) -> None:
        self.trace = trace
        self.host = host
        self.port = port
        self._cert = cert
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.unmatched: list[str] = []  # root names of commands the trace had no answer for

    @property
    def cert_fingerprint(self) -> str:
        assert self._cert is not None
        return fingerprint(self._cert.cert_pem)

    async def start(self) -> None:
        self._cert = self._cert or self_signed()
        self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=server_context(self._cert))
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("replaying %d recorded commands on %s:%d", len(self.trace.segments), self.host, self.port)

    async def stop(self) -> None:
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> "ReplaySimulator":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        cursor = _Cursor(self.trace)
        ids: dict[int, int] = {}
        try:
            for invoke_id, xml in self.trace.preamble:
                writer.write(encode_frame(invoke_id, xml))
            while True:
                frame = await read_frame(reader)
                root = parse(frame.payload)
                if root.tag == "keepalive":
                    continue
                if root.tag == "logout":
                    break
                seg = cursor.take(root)
                if seg is None:
                    if root.tag == "loginRequest" and not self.trace.has_login:
                        writer.write(encode_frame(frame.invoke_id, DEFAULT_LOGIN))
                    else:
                        self.unmatched.append(root.tag)
                        log.info("replay: no recorded answer for %s", root.tag)
                    continue
                ids[seg.invoke_id] = frame.invoke_id
                for invoke_id, xml in seg.replies:
                    live = invoke_id if invoke_id in (EVENT_ID, KEEPALIVE_ID) else ids.get(invoke_id, invoke_id)
                    writer.write(encode_frame(live, xml))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError, FrameError, MXProtocolError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
