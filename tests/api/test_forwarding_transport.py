"""The forwarding pool (``mxproxy.api.forwarding_transport.PeerPool``) against a real local HTTP
peer: keep-alive reuse, a peer that closed an idle connection, a peer that breaks off mid-body,
and the bound on requests in flight."""

from __future__ import annotations

import asyncio
from typing import Any

import httpcore
import pytest

from mxproxy.api.forwarding_transport import PeerPool


class Peer:
    """Answers ``GET /n`` with ``n`` bytes; ``/cut`` promises 1000 and sends 10; ``/hang`` never
    answers. ``close_after`` answers close the connection afterwards (without saying so)."""

    def __init__(self, close_after: bool = False) -> None:
        self.connections = 0
        self.close_after = close_after
        self.server: Any = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                if path == "/hang":
                    await reader.read()
                    return
                if path == "/cut":
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + b"x" * 10)
                    await writer.drain()
                    writer.close()
                    return
                body = b"y" * int(path[1:])
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nx-peer: yes\r\n\r\n%s" % (len(body), body))
                await writer.drain()
                if self.close_after:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        self.server.close()


def request(port: int, path: str) -> httpcore.Request:
    return httpcore.Request(b"GET", httpcore.URL(scheme=b"http", host=b"127.0.0.1", port=port, target=path.encode()),
                            headers=[(b"host", f"127.0.0.1:{port}".encode())], content=b"",
                            extensions={"timeout": {"read": 2.0, "write": 2.0, "connect": 2.0, "pool": 2.0}})


async def fetch(pool: PeerPool, port: int, path: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    response = await pool.handle_async_request(request(port, path))
    try:
        return response.status, await response.aread(), response.headers
    finally:
        await response.aclose()


async def test_sequential_requests_to_a_peer_share_one_keep_alive_connection() -> None:
    peer = Peer()
    port = await peer.start()
    pool = PeerPool(connect_timeout=2.0)
    try:
        for size in (5, 70_000, 0, 12):
            status, body, headers = await fetch(pool, port, f"/{size}")
            assert (status, body) == (200, b"y" * size) and (b"x-peer", b"yes") in headers
        assert peer.connections == 1
    finally:
        await pool.aclose()
        await peer.stop()


async def test_a_connection_the_peer_closed_while_idle_is_replaced_without_an_error() -> None:
    peer = Peer(close_after=True)
    port = await peer.start()
    pool = PeerPool(connect_timeout=2.0)
    try:
        assert (await fetch(pool, port, "/3"))[1] == b"yyy"
        await asyncio.sleep(0.05)  # the close has arrived: the idle connection knows it
        assert (await fetch(pool, port, "/4"))[1] == b"yyyy"
        # closed but not yet noticed: the request goes out on it, fails, and is sent once more
        assert (await fetch(pool, port, "/2"))[1] == b"yy"
        assert (await fetch(pool, port, "/1"))[1] == b"y"
        assert peer.connections == 4
    finally:
        await pool.aclose()
        await peer.stop()


async def test_a_peer_breaking_off_mid_body_is_an_error_and_frees_its_slot() -> None:
    peer = Peer()
    port = await peer.start()
    pool = PeerPool(connect_timeout=0.2, max_active=1)
    try:
        response = await pool.handle_async_request(request(port, "/cut"))
        with pytest.raises((httpcore.RemoteProtocolError, httpcore.ReadError)):
            try:
                await response.aread()
            finally:
                await response.aclose()
        # the only slot is free again: the next request goes through
        assert (await fetch(pool, port, "/2"))[1] == b"yy"
    finally:
        await pool.aclose()
        await peer.stop()


async def test_requests_beyond_the_bound_in_flight_wait_then_time_out() -> None:
    peer = Peer()
    port = await peer.start()
    pool = PeerPool(connect_timeout=0.2, max_active=1)
    try:
        hanging = asyncio.create_task(pool.handle_async_request(request(port, "/hang")))
        await asyncio.sleep(0.1)
        with pytest.raises(httpcore.PoolTimeout):
            await fetch(pool, port, "/1")
        with pytest.raises(httpcore.ReadTimeout):
            await hanging  # the read timeout (2 s) of the hanging one
        assert (await fetch(pool, port, "/1"))[1] == b"y"  # its slot came back
    finally:
        await pool.aclose()
        await peer.stop()
