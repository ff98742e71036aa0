"""The network layer under the forwarding pool: httpcore's pool and HTTP/1.1 over asyncio
protocols directly (``httpcore.AsyncConnectionPool(network_backend=AsyncioBackend())``).

Why not httpcore's default (anyio) streams: the pool asks every connection it holds whether it
expired, on each request, and for an idle one anyio answers with a ``poll()`` system call on its
socket; every read and write also opens and closes an anyio cancel scope. With the connections a
busy forwarder keeps to its peers that was most of the hop's CPU. Here a connection knows from
its protocol callbacks whether the peer closed it or sent something, and a read that finds data
buffered returns without arming a timer.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore


class _Protocol(asyncio.Protocol):
    """Buffers what arrives; one reader and one writer at a time (httpcore's connection)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait_data(self, timeout: float | None) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._waiter
        finally:
            self._waiter = None

    async def wait_drained(self, timeout: float | None) -> None:
        self._drained = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._drained
        finally:
            self._drained = None


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not protocol.eof:
            try:
                await protocol.wait_data(timeout)
            except TimeoutError:
                raise httpcore.ReadTimeout("the peer did not answer in time") from None
        if protocol.buffer:
            data = bytes(protocol.buffer[:max_bytes])
            del protocol.buffer[:max_bytes]
            return data
        if protocol.error is not None:
            raise httpcore.ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""  # the peer closed the connection

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        if self._protocol.paused:
            try:
                await self._protocol.wait_drained(timeout)
            except TimeoutError:
                raise httpcore.WriteTimeout("the peer did not take the request in time") from None
            if self._transport.is_closing():
                raise httpcore.WriteError("the connection closed while writing")

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(self._transport, self._protocol, ssl_context,
                                                 server_hostname=server_hostname)
        except TimeoutError:
            raise httpcore.ConnectTimeout("TLS handshake timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpcore.ConnectError(str(exc)) from None
        if transport is None:
            raise httpcore.ConnectError("TLS could not be started")
        self._protocol.transport = transport  # type: ignore[assignment]
        return AsyncioStream(transport, self._protocol)  # type: ignore[arg-type]

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # an idle keep-alive connection with news is a closed one
            return bool(self._protocol.buffer) or self._protocol.eof
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol, host, port, local_addr=(local_address, 0) if local_address else None)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for option in socket_options or ():
                    sock.setsockopt(*option)
            except OSError:
                pass
        return AsyncioStream(transport, protocol)  # type: ignore[arg-type]

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("peers are reached over TCP")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _Returning:
    """The body stream of a forwarded answer; closing it puts the connection back in the pool."""

    def __init__(self, inner: Any, pool: "PeerPool", key: tuple[bytes, bytes, int],
                 connection: httpcore.AsyncHTTP11Connection) -> None:
        self._inner = inner
        self._pool = pool
        self._key = key
        self._connection: httpcore.AsyncHTTP11Connection | None = connection

    def __aiter__(self) -> Any:
        return self._inner.__aiter__()

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            await self._inner.aclose()
        finally:
            await self._pool._put_back(self._key, connection)


class PeerPool:
    """Keep-alive HTTP/1.1 connections to the peers: httpcore's HTTP/1.1 connection (h11) over
    ``AsyncioBackend``, pooled here per peer (last used first).

    Why not ``httpcore.AsyncConnectionPool``: on every request and every answer closed it walks
    its connections once per connection (``is_idle`` of each, for each: quadratic), under a lock
    and with an event per request; with the 16-32 connections a busy forwarder keeps to a peer
    that was more than half of the hop's CPU. Here taking a connection is a list pop.

    At most ``max_active`` forwarded requests are in flight (waiting longer than the connect
    timeout for a slot is a PoolTimeout: the client gets 503 + Retry-After); at most
    ``max_idle`` connections per peer are kept."""

    def __init__(self, *, connect_timeout: float, max_active: int = 200, max_idle: int = 100,
                 keepalive_expiry: float = 30.0) -> None:
        self._backend = AsyncioBackend()
        self._connect_timeout = connect_timeout
        self._keepalive_expiry = keepalive_expiry
        self._max_idle = max_idle
        self._slots = asyncio.Semaphore(max_active)
        self._idle: dict[tuple[bytes, bytes, int], list[httpcore.AsyncHTTP11Connection]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        url = request.url
        key = (url.scheme, url.host, url.port or (443 if url.scheme == b"https" else 80))
        if self._slots.locked():
            try:
                await asyncio.wait_for(self._slots.acquire(), self._connect_timeout)
            except TimeoutError:
                raise httpcore.PoolTimeout("every forwarding slot is busy") from None
        else:
            await self._slots.acquire()
        try:
            connection, reused = await self._take(key)
            try:
                response = await connection.handle_async_request(request)
            except (httpcore.NetworkError, httpcore.RemoteProtocolError):
                await connection.aclose()
                if not reused or not isinstance(request.stream, Iterable):  # bytes: can be sent again
                    raise
                # the peer closed an idle keep-alive connection as we reused it: once, on a new one
                connection, _ = await self._connect(key), False
                response = await connection.handle_async_request(request)
        except BaseException:
            self._slots.release()
            raise
        return httpcore.Response(status=response.status, headers=response.headers,
                                 content=_Returning(response.stream, self, key, connection),
                                 extensions=response.extensions)

    async def _take(self, key: tuple[bytes, bytes, int]) -> tuple[httpcore.AsyncHTTP11Connection, bool]:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if connection.is_idle() and not connection.has_expired():
                return connection, True
            await connection.aclose()
        return await self._connect(key), False

    async def _connect(self, key: tuple[bytes, bytes, int]) -> httpcore.AsyncHTTP11Connection:
        scheme, host, port = key
        name = host.decode("ascii")
        stream = await self._backend.connect_tcp(name, port, timeout=self._connect_timeout)
        if scheme == b"https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            stream = await stream.start_tls(self._ssl, server_hostname=name, timeout=self._connect_timeout)
        return httpcore.AsyncHTTP11Connection(origin=httpcore.Origin(scheme, host, port), stream=stream,
                                              keepalive_expiry=self._keepalive_expiry)

    async def _put_back(self, key: tuple[bytes, bytes, int], connection: httpcore.AsyncHTTP11Connection) -> None:
        self._slots.release()
        idle = self._idle.setdefault(key, [])
        if not self._closed and connection.is_idle() and len(idle) < self._max_idle:
            idle.append(connection)
        else:
            await connection.aclose()

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                await connection.aclose()
