"""``mxproxy.runtime``: uvloop + httptools when installed, asyncio + h11 when not, and the same
request-head bound under either parser (served by the real ``_HTTPServer``)."""

from __future__ import annotations

import asyncio
import sys
from typing import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from mxproxy import runtime
from mxproxy.server import Listen, _HTTPServer


def _missing(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``import module`` fail as on a platform without its wheel."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_uvloop_and_httptools_are_used_when_installed() -> None:
    async def which() -> str:
        return runtime.describe(asyncio.get_running_loop(), runtime.http_protocol())

    described = runtime.run(which())
    assert described.startswith("event loop uvloop ") and ", HTTP parser httptools " in described


def test_without_the_wheels_the_process_runs_on_asyncio_and_h11(monkeypatch: pytest.MonkeyPatch) -> None:
    _missing(monkeypatch, "uvloop", "httptools")
    assert runtime.loop_factory() is None
    assert runtime.http_protocol() == "h11"

    async def which() -> tuple[str, str]:
        loop = asyncio.get_running_loop()
        return type(loop).__module__, runtime.describe(loop, runtime.http_protocol())

    module, described = runtime.run(which())
    assert module.startswith("asyncio")
    assert described.startswith("event loop asyncio, HTTP parser h11 ")


async def _hello(request: Request) -> Response:
    return PlainTextResponse(f"{len(request.headers.get('x-pad', ''))}")


@pytest.fixture(params=["httptools", "h11"])
async def port(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[int]:
    if request.param == "h11":
        _missing(monkeypatch, "httptools")
    server = _HTTPServer("test", Listen("127.0.0.1", 0), 1)
    await server.start(Starlette(routes=[Route("/", _hello)]))
    protocol = server.server.config.http_protocol_class  # type: ignore[union-attr]
    assert ("HttpTools" in protocol.__name__) == (request.param == "httptools")
    try:
        yield server.port
    finally:
        server.request_stop()
        await server.wait()


async def _exchange(port: int, *chunks: bytes) -> bytes:
    """Write the chunks one by one, then read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        return await asyncio.wait_for(reader.read(-1), 10)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


def _request(pad: int, *, close: bool = False) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return b"GET / HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"a" * pad + b"\r\n" + connection + b"\r\n"


async def test_a_request_head_unfinished_after_64_kib_is_refused_with_400_and_the_connection_closed(
    port: int,
) -> None:
    """An endless header line: without the bound the parser would buffer it for ever."""
    head = _request(runtime.MAX_REQUEST_HEAD + 1024)[:-4]  # never ends
    answer = await _exchange(port, *(head[i:i + 1024] for i in range(0, len(head), 1024)))
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.endswith(runtime.BAD_REQUEST.encode())


async def test_heads_below_the_bound_and_pipelined_requests_are_served(port: int) -> None:
    big = runtime.MAX_REQUEST_HEAD - 1024
    assert (await _exchange(port, _request(big, close=True))).endswith(str(big).encode())
    # 200 small requests in one write: more than the bound together, each far below it
    burst = _request(400) * 199 + _request(400, close=True)
    assert len(burst) > runtime.MAX_REQUEST_HEAD
    answer = await _exchange(port, burst)
    assert answer.count(b"HTTP/1.1 200 ") == 200 and b" 400 " not in answer
