"""Connection limits of ``mxproxy serve`` (``[server] keepAliveTimeout/headerTimeout/
maxConnections``), with raw sockets against a real ProxyServer on loopback, on both listeners:
silent and slowloris connections are closed, an idle keep-alive connection too, and beyond the
cap a new connection gets a JSON 503 while the server keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from mxproxy.server import ProxyServer
from tests.admin.test_serve import start

# generous bounds on how long a close may take: the limits under test are a fraction of them
CLOSE_WITHIN = 5.0
LISTENERS = ["public", "admin"]
PROBE = {"public": "/openapi.json", "admin": "/healthz"}  # a route each listener answers 200


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, start_simulator: Any, limits: str) -> AsyncIterator[ProxyServer]:
    server, _ = await start(tmp_path, start_simulator, limits)
    try:
        yield server
    finally:
        await server.stop()


def port_of(server: ProxyServer, listener: str) -> int:
    port = server.public_port if listener == "public" else server.admin_port
    assert port
    return port


async def open_raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def closed_by_server(reader: asyncio.StreamReader, within: float = CLOSE_WITHIN) -> bool:
    """True when the server closes the connection (EOF or reset) within ``within`` seconds."""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), within)
            if not chunk:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except asyncio.TimeoutError:
        return False


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CLOSE_WITHIN)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), CLOSE_WITHIN)
    return status, headers, body


def request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


@pytest.mark.parametrize("listener", LISTENERS)
async def test_a_connection_that_never_sends_a_request_is_closed_after_the_header_timeout(
        tmp_path: Path, start_simulator: Any, listener: str) -> None:
    async with serving(tmp_path, start_simulator, 'headerTimeout = "300ms"') as server:
        reader, writer = await open_raw(port_of(server, listener))
        assert await closed_by_server(reader)
        writer.close()


@pytest.mark.parametrize("listener", LISTENERS)
async def test_a_slowloris_partial_header_is_closed_while_it_is_still_dribbling(
        tmp_path: Path, start_simulator: Any, listener: str) -> None:
    async with serving(tmp_path, start_simulator, 'headerTimeout = "500ms"') as server:
        reader, writer = await open_raw(port_of(server, listener))
        writer.write(f"GET {PROBE[listener]} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
        closed = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_WITHIN
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            while loop.time() < deadline:
                writer.write(b"X-Slow: 1\r\n")  # a header line every 100 ms, never the blank line
                await writer.drain()
                if await closed_by_server(reader, within=0.1):
                    closed = True
                    break
        writer.close()
        assert closed or loop.time() < deadline  # a reset while writing is a close too


async def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(
        tmp_path: Path, start_simulator: Any) -> None:
    async with serving(tmp_path, start_simulator, 'keepAliveTimeout = "300ms"\nheaderTimeout = "30s"') as server:
        reader, writer = await open_raw(server.public_port)
        writer.write(request("/openapi.json"))
        status, headers, _ = await read_response(reader)
        assert status == 200 and headers.get("connection", "keep-alive") != "close"
        assert await closed_by_server(reader)
        writer.close()


async def test_a_request_that_takes_long_after_its_headers_is_not_cut_by_the_header_timeout(
        tmp_path: Path, start_simulator: Any) -> None:
    async with serving(tmp_path, start_simulator, 'headerTimeout = "300ms"') as server:
        reader, writer = await open_raw(server.public_port)
        writer.write(request("/openapi.json") + request("/openapi.json"))  # pipelined
        for _ in range(2):
            status, _, body = await read_response(reader)
            assert status == 200 and json.loads(body)["openapi"]
        writer.close()


@pytest.mark.parametrize("listener", LISTENERS)
async def test_beyond_the_connection_cap_a_new_connection_gets_503_and_the_server_still_serves(
        tmp_path: Path, start_simulator: Any, listener: str) -> None:
    async with serving(tmp_path, start_simulator, 'maxConnections = 3\nheaderTimeout = "30s"') as server:
        port = port_of(server, listener)
        held = [await open_raw(port) for _ in range(3)]
        reader, writer = await open_raw(port)
        writer.write(request(PROBE[listener]))
        status, headers, body = await read_response(reader)
        assert status == 503
        assert json.loads(body) == {"error": "server busy: too many open connections"}
        assert headers["connection"] == "close" and headers["retry-after"] == "1"
        assert await closed_by_server(reader)
        writer.close()
        # a connection opened within the cap is served as usual ...
        r0, w0 = held[0]
        w0.write(request(PROBE[listener]))
        assert (await read_response(r0))[0] == 200
        # ... and once the others go, new connections are served again
        for _, w in held:
            w.close()
        await asyncio.sleep(0)  # let the server see the closes (no timing: polled below)
        for _ in range(100):
            reader, writer = await open_raw(port)
            writer.write(request(PROBE[listener]))
            status = (await read_response(reader))[0]
            writer.close()
            if status == 200:
                break
            await asyncio.sleep(0.05)
        assert status == 200


async def test_a_kept_alive_connection_gets_the_keep_alive_timeout_not_the_shorter_header_timeout(
        tmp_path: Path, start_simulator: Any) -> None:
    async with serving(tmp_path, start_simulator, 'keepAliveTimeout = "2s"\nheaderTimeout = "200ms"') as server:
        reader, writer = await open_raw(server.public_port)
        writer.write(request("/openapi.json"))
        assert (await read_response(reader))[0] == 200
        assert not await closed_by_server(reader, within=0.6)  # well past headerTimeout: still open
        writer.write(request("/openapi.json"))
        assert (await read_response(reader))[0] == 200
        # a head dribbled after an answer is closed too (within keepAliveTimeout here)
        writer.write(b"GET /openapi.json HTTP/1.1\r\n")
        assert await closed_by_server(reader)
        writer.close()
