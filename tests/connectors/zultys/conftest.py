"""Fixtures for the Zultys connector tests: small simulator worlds, logged-in sessions, an event
reader, and ``ScriptedMX`` — a raw TLS peer for what the simulator will not do (an entity bomb,
an empty address book, a FailedEvent), written with the test suite's own frame codec."""

from __future__ import annotations

import asyncio
import dataclasses
import struct
import xml.etree.ElementTree as ET
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from mxproxy.config import MXConfig
from mxproxy.connectors.base import Event, MXAccount
from mxproxy.connectors.zultys import ZultysConnector, ZultysSession
from mxproxy.simulator import Fixture, SimUser
from mxproxy.simulator.tls import self_signed, server_context
from tests.rawcsta import build_frame

FAST = MXConfig(response_timeout=2.0, connect_timeout=2.0, call_log_idle=0.2, call_reply_grace=0.05)


def small_world(directory_entries: int = 0) -> Fixture:
    """alice (201) and bob (202) can log in; carol (203) is an LDAP user (clear-text login)."""
    fx = Fixture(users=[
        SimUser(login="alice", password="alice-pw", ext="201", jid=43884851147406145, first_name="Alice", last_name="A"),
        SimUser(login="bob", password="bob-pw", ext="202", jid=43884851147406146, first_name="Bob", last_name="B"),
        SimUser(login="carol", password="carol-pw", ext="203", jid=43884851147406147, first_name="Carol",
                last_name="C", ldap=True),
    ])
    if directory_entries:
        fx.add_directory_entries(directory_entries)
    return fx


Connect = Callable[..., Awaitable[ZultysSession]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """``session = await connect(sim_or_port, login="alice", password=None, **config_overrides)``."""
    sessions: list[ZultysSession] = []

    async def factory(sim: Any, login: str = "alice", password: str | None = None, **overrides: Any) -> ZultysSession:
        port = sim if isinstance(sim, int) else sim.port
        if password is None:
            password = f"{login}-pw"
        config = dataclasses.replace(FAST, **overrides)
        session = await ZultysConnector(config).login(MXAccount("127.0.0.1", port, login, password))
        sessions.append(session)
        return session

    yield factory
    for session in sessions:
        await session.close()


class EventReader:
    """Reads a session's single event stream; ``next(cls)`` skips other event types."""

    def __init__(self, session: ZultysSession) -> None:
        self._it = session.events().__aiter__()
        self.seen: list[Event] = []

    async def next(self, cls: type | tuple[type, ...] = Event, timeout: float = 3.0) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = await asyncio.wait_for(self._it.__anext__(), max(0.01, deadline - loop.time()))
            self.seen.append(event)
            if isinstance(event, cls):
                return event


# -- a scripted raw MX peer ------------------------------------------------------------------


@dataclasses.dataclass
class RawRequest:
    invoke_id: int
    payload: bytes
    root: ET.Element


Handler = Callable[["ScriptedConnection", RawRequest], Awaitable[None]]


class ScriptedConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def send(self, invoke_id: int, xml: str | bytes) -> None:
        self.writer.write(build_frame(invoke_id, xml))

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)


class ScriptedMX:
    """Accepts TLS, answers ``loginRequest`` with ``loginResponce`` and hands every other frame
    to ``handler``. Every frame received is kept in ``received`` (raw headers included)."""

    LOGIN_OK = '<loginResponce Code="0" sn="1" apiversion="11" ext="201" userId="7">Login OK</loginResponce>'

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler
        self.received: list[RawRequest] = []
        self.headers: list[bytes] = []
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.connections: list[ScriptedConnection] = []

    async def start(self) -> "ScriptedMX":
        ctx = server_context(self_signed())
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ctx)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ScriptedConnection(reader, writer)
        self.connections.append(conn)
        try:
            while True:
                header = await reader.readexactly(8)
                self.headers.append(header)
                length = struct.unpack(">H", header[2:4])[0]
                payload = await reader.readexactly(length - 8)
                request = RawRequest(int(header[4:8]), payload, ET.fromstring(payload))
                self.received.append(request)
                if request.root.tag == "loginRequest":
                    conn.send(request.invoke_id, self.LOGIN_OK)
                elif self.handler is not None:
                    await self.handler(conn, request)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def names(self) -> list[str]:
        return [r.root.tag for r in self.received]

    async def stop(self) -> None:
        for conn in self.connections:
            conn.writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def scripted_mx() -> AsyncIterator[Callable[[Handler | None], Awaitable[ScriptedMX]]]:
    servers: list[ScriptedMX] = []

    async def factory(handler: Handler | None = None) -> ScriptedMX:
        server = await ScriptedMX(handler).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop()
