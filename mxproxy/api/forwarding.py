"""Cluster routing of the public API: a request for a user another instance owns goes there.

``ForwardingMiddleware`` reads the bearer token's subject, asks ``Ownership.route`` and either
lets the request through, forwards it to the owner (httpx's transport layer, httpcore's HTTP/1.1
connections, kept alive in ``forwarding_transport.PeerPool``) or answers 503 + ``Retry-After``
while the owner is being replaced.
``POST /auth`` is forwarded by its handler once the provisioned login is known
(``ServedElsewhere``). The client sees the owner's status, headers and body, streamed (voicemail
downloads are not buffered).

Why httpcore and not ``httpx.AsyncClient``: the forwarded hop is on the request path of every
request that lands on a non-owner, and the client layer above the transport (URL parsing and
merging, the cookie jar, auth and redirect flows, header normalisation, response decoding
wrappers) is most of a keep-alive round trip's Python work. The request here is already parsed
ASGI: its raw header list and target go to the pool as they are (hop-by-hop headers dropped), the
answer's raw headers come back the same way, nothing is decoded (gzip stays gzip).

Instances authenticate each other with an HMAC over the method, target and a timestamp, keyed by
a key derived once from the store key (every instance of one store has it; nobody else does). A
forwarded request is served where it lands: the hop limit is one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable
from urllib.parse import urlsplit

import httpcore
import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mxproxy.api.bodies import MAX_BODY
from mxproxy.api.errors import ApiError, error_response
from mxproxy.api.forwarding_transport import PeerPool
from mxproxy.api.sse import at_frame_boundary, end_frame
from mxproxy.auth.errors import InvalidToken
from mxproxy.store.base import StoreError

if TYPE_CHECKING:
    from mxproxy.api.context import ApiContext
    from mxproxy.config import SSEConfig
    from mxproxy.metrics import Metrics

log = logging.getLogger("mxproxy.cluster")

PEER_HEADER = "x-mxproxy-peer"  # "<instance>;<unix time>;<hex hmac>"
HOP_HEADER = "x-mxproxy-hop"
MAX_HOPS = 1
BUFFER_LIMIT = 64 * 1024  # answers up to this size are read whole before they are passed on
PEER_CLOCK_SKEW = 60.0  # seconds a peer signature stays acceptable
#: Routes served wherever they arrive (no user session behind them).
LOCAL_PATHS = frozenset({"/openapi.json", "/debug/log"})
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
    "transfer-encoding", "upgrade", "host", PEER_HEADER, HOP_HEADER,
})
HOP_BY_HOP_BYTES = frozenset(h.encode("latin-1") for h in HOP_BY_HOP)
#: Of the request's: transfer-encoding stays so the pool frames a streamed (chunked) body again.
REQUEST_DROPPED = HOP_BY_HOP_BYTES - {b"transfer-encoding"}
#: Of the answer's: the edge middleware stamps this instance's Server header again.
ANSWER_DROPPED = HOP_BY_HOP_BYTES | {b"server"}
PEER_HEADER_BYTES = PEER_HEADER.encode("latin-1")
HOP_HEADER_BYTES = HOP_HEADER.encode("latin-1")
HOP_VALUE = str(MAX_HOPS).encode("latin-1")
MOVING = "the user's mx session is moving to another instance; retry"
STREAM_PATH = "/events"  # GET /events (mxproxy.api.events.PATH): relayed on its own pool
MOVED_REASON = "moved"  # mxproxy.api.events.MOVED
#: What a peer that cannot be reached (or answers garbage) raises: the owner is being replaced.
UNREACHABLE = (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol,
               httpcore.ConnectionNotAvailable, OSError)


def cluster_key(store_key: str) -> bytes:
    """The instances' shared forwarding key, derived from the store key (never the key itself)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"mxproxy cluster forwarding v1").derive(store_key.encode("utf-8"))


class PeerAuth:
    """Signs and checks the ``X-MXProxy-Peer`` header. The keyed HMAC state is made once and
    copied per message (the key's padding blocks are not hashed again per request)."""

    def __init__(self, key: bytes, instance_id: str) -> None:
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self.instance_id = instance_id

    def _mac(self, instance: str, stamp: str, method: str, target: str) -> str:
        mac = self._keyed.copy()
        mac.update(f"{instance}\n{stamp}\n{method.upper()}\n{target}".encode("utf-8"))
        return mac.hexdigest()

    def sign(self, method: str, target: str, now: float | None = None) -> str:
        stamp = str(int(now if now is not None else time.time()))
        return f"{self.instance_id};{stamp};{self._mac(self.instance_id, stamp, method, target)}"

    def verify(self, header: str, method: str, target: str, now: float | None = None) -> str | None:
        """The signing instance's id, or None for a missing, stale or forged header."""
        parts = header.split(";")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        instance, stamp, mac = parts
        current = now if now is not None else time.time()
        if abs(current - int(stamp)) > PEER_CLOCK_SKEW:
            return None
        if not hmac.compare_digest(mac, self._mac(instance, stamp, method, target)):
            return None
        return instance


def _target(scope: Scope) -> str:
    path = scope.get("raw_path") or scope["path"].encode("utf-8")
    query = scope.get("query_string") or b""
    target = path.decode("latin-1")
    return f"{target}?{query.decode('latin-1')}" if query else target


class _Peer:
    """A peer's base URL, split once: the pool is given the pieces, never a URL to parse."""

    __slots__ = ("scheme", "host", "port", "prefix", "host_header")

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.scheme = parts.scheme.encode("ascii")
        self.host = (parts.hostname or "").encode("idna")
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/").encode("latin-1")  # an advertised URL may have a path
        self.host_header = parts.netloc.rpartition("@")[2].encode("idna")

    def url(self, target: str) -> httpcore.URL:
        return httpcore.URL(scheme=self.scheme, host=self.host, port=self.port,
                            target=self.prefix + target.encode("latin-1"))


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


class Forwarder:
    """Sends requests to peers over one keep-alive connection pool (httpcore, under httpx)."""

    def __init__(self, auth: PeerAuth, metrics: "Metrics | None" = None, *, connect_timeout: float = 2.0,
                 read_timeout: float = 120.0, max_connections: int = 200) -> None:
        self.auth = auth
        self.metrics = metrics
        # a peer on the LAN is never reached through an HTTP proxy (no environment is read here)
        self.pool = PeerPool(connect_timeout=connect_timeout, max_active=max_connections,
                             max_idle=max_connections // 2, keepalive_expiry=30.0)
        self._extensions = {"timeout": {"connect": connect_timeout, "pool": connect_timeout,
                                        "read": read_timeout, "write": read_timeout}}
        self._peers: dict[str, _Peer] = {}
        self._ok = metrics.forwarded_requests.labels("ok") if metrics is not None else None
        self._unreachable = metrics.forwarded_requests.labels("unreachable") if metrics is not None else None
        self.forwarded = 0
        self.failures = 0
        self.connect_timeout = connect_timeout
        self._streams: httpx.AsyncClient | None = None

    async def aclose(self) -> None:
        await self.pool.aclose()
        await self.close_streams()

    async def close_streams(self) -> None:
        """End every relayed event stream (shutdown): their connections to the owners close, each
        relay writes its ``event: end``."""
        streams, self._streams = self._streams, None
        if streams is not None:
            await streams.aclose()

    def stream_client(self, sse: "SSEConfig") -> httpx.AsyncClient:
        """The pool of relayed event streams (``GET /events``), apart from the request pool: each
        open stream holds a connection for as long as it lives, and must not take them from the
        short requests. No time limit but a read one: the owner is never silent for more than two
        ``[sse] heartbeat`` periods, so three mean the owner is gone. (httpx's client: a stream is
        set up once and lives long, the per-request cost of the client does not matter here.)"""
        if self._streams is None:
            self._streams = httpx.AsyncClient(
                timeout=httpx.Timeout(None, connect=self.connect_timeout, read=3 * sse.heartbeat + 1.0,
                                      pool=self.connect_timeout),
                limits=httpx.Limits(max_connections=sse.max_streams, max_keepalive_connections=20,
                                    keepalive_expiry=30.0),
                follow_redirects=False,
                trust_env=False,
            )
        return self._streams

    async def forward_stream(self, request: Request, base_url: str, sse: "SSEConfig",
                             release: Callable[[], None]) -> Response:
        """``GET /events`` of a user another instance owns: the owner's stream relayed as it comes,
        ended here with ``event: end`` reason ``moved`` when the owner goes away mid-stream (so
        the client reconnects with Last-Event-ID and reaches the user's next owner). ``release``
        runs once the relay is over."""
        try:
            response = await self._forward_on(self.stream_client(sse), request, base_url)
        except BaseException:
            release()
            raise
        if not isinstance(response, StreamingResponse):  # an error answer, read whole
            release()
            return response
        response.body_iterator = _relay(response.body_iterator, release)
        previous = response.background

        async def done() -> None:
            release()
            if previous is not None:
                await previous()

        response.background = BackgroundTask(done)
        return response

    async def _forward_on(self, pool: httpx.AsyncClient, request: Request, base_url: str) -> Response:
        """``request`` sent on an httpx client ``pool`` (the event streams'), answer streamed."""
        started = time.perf_counter()
        target = _target(request.scope)
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        client = request.client.host if request.client else ""
        if client:
            headers.append(("x-forwarded-for", client))
        headers.append((PEER_HEADER, self.auth.sign(request.method, target)))
        headers.append((HOP_HEADER, "1"))
        outgoing = pool.build_request(request.method, base_url + target, headers=headers,
                                      content=_stream(request.receive) if _has_body(request.scope["headers"]) else b"")
        try:
            answer = await pool.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            self.failures += 1
            if self._unreachable is not None:
                self._unreachable.inc()
            log.warning("cluster: forwarding %s %s to %s failed: %s", request.method, request.url.path, base_url,
                        type(exc).__name__)
            return error_response(503, MOVING, {"Retry-After": "1"})
        self._observe(started)
        headers = [(k, v) for k, v in answer.headers.raw if k.lower() not in ANSWER_DROPPED]
        length = answer.headers.get("content-length", "")
        if length.isdigit() and int(length) <= BUFFER_LIMIT:
            try:
                payload = b"".join([chunk async for chunk in answer.aiter_raw()])
            finally:
                await answer.aclose()
            response: Response = Response(payload, status_code=answer.status_code)
        else:
            response = StreamingResponse(answer.aiter_raw(), status_code=answer.status_code,
                                         background=BackgroundTask(answer.aclose))
        response.raw_headers = headers
        return response

    def _peer(self, base_url: str) -> _Peer:
        peer = self._peers.get(base_url)
        if peer is None:
            if len(self._peers) > 1024:  # members come and go with their generated ids
                self._peers.clear()
            peer = self._peers[base_url] = _Peer(base_url)
        return peer

    async def _open(self, scope: Scope, base_url: str, content: Any) -> httpcore.Response | None:
        """The peer's answer (its body not read yet), or None when it cannot be reached."""
        method: str = scope["method"]
        target = _target(scope)
        peer = self._peer(base_url)
        headers = [(k, v) for k, v in scope["headers"] if k not in REQUEST_DROPPED]
        headers.append((b"host", peer.host_header))
        client = scope.get("client")
        if client and client[0]:
            headers.append((b"x-forwarded-for", client[0].encode("latin-1")))
        headers.append((PEER_HEADER_BYTES, self.auth.sign(method, target).encode("latin-1")))
        headers.append((HOP_HEADER_BYTES, HOP_VALUE))
        request = httpcore.Request(method.encode("ascii"), peer.url(target), headers=headers, content=content,
                                   extensions=self._extensions)
        try:
            return await self.pool.handle_async_request(request)
        except UNREACHABLE as exc:
            self.failures += 1
            if self._unreachable is not None:
                self._unreachable.inc()
            log.warning("cluster: forwarding %s %s to %s failed: %s", method, scope["path"], base_url,
                        type(exc).__name__)
            return None

    def _observe(self, started: float) -> None:
        self.forwarded += 1
        if self.metrics is not None:
            assert self._ok is not None
            self._ok.inc()
            self.metrics.forward_latency.observe(time.perf_counter() - started)

    async def forward(self, request: Request, base_url: str, body: bytes | None = None) -> Response:
        """The peer's answer to ``request`` as a response to return from a handler (503 +
        Retry-After when the peer cannot be reached: it is being replaced)."""
        started = time.perf_counter()
        scope = request.scope
        content: Any = body if body is not None else (_stream(request.receive) if _has_body(scope["headers"]) else b"")
        answer = await self._open(scope, base_url, content)
        if answer is None:
            return error_response(503, MOVING, {"Retry-After": "1"})
        self._observe(started)
        headers = [(k, v) for k, v in answer.headers if k.lower() not in ANSWER_DROPPED]
        if _small(answer.headers):
            try:
                payload = await answer.aread()  # as sent (gzip stays gzip)
            finally:
                await answer.aclose()
            response: Response = Response(payload, status_code=answer.status)
        else:  # large or unknown length (voicemail audio): streamed as it arrives
            response = StreamingResponse(answer.aiter_stream(), status_code=answer.status,
                                         background=BackgroundTask(answer.aclose))
        response.raw_headers = headers
        return response

    async def forward_asgi(self, scope: Scope, receive: Receive, send: Send, base_url: str) -> None:
        """The middleware's path: the answer goes to ``send`` without a Response object; a small
        one (every JSON answer) is one write of head and body."""
        started = time.perf_counter()
        content: Any = _stream(receive) if _has_body(scope["headers"]) else b""
        answer = await self._open(scope, base_url, content)
        if answer is None:
            await error_response(503, MOVING, {"Retry-After": "1"})(scope, receive, send)
            return
        self._observe(started)
        if not _small(answer.headers):
            headers = [(k, v) for k, v in answer.headers if k.lower() not in ANSWER_DROPPED]
            response = StreamingResponse(answer.aiter_stream(), status_code=answer.status,
                                         background=BackgroundTask(answer.aclose))
            response.raw_headers = headers
            try:
                await response(scope, receive, send)  # it notices a client that goes away
            finally:  # also when the peer breaks off mid-body: the connection slot is given back
                await answer.aclose()
            return
        try:
            payload = await answer.aread()
        finally:
            await answer.aclose()
        headers = [(k, v) for k, v in answer.headers if k.lower() not in ANSWER_DROPPED]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _small(headers: list[tuple[bytes, bytes]]) -> bool:
    """The answer says how long it is and that is at most ``BUFFER_LIMIT``."""
    for name, value in headers:
        if name.lower() == b"content-length":
            return value.isdigit() and int(value) <= BUFFER_LIMIT
    return False


async def _relay(chunks: AsyncIterator[bytes], release: Callable[[], None]) -> AsyncIterator[bytes]:
    """An owner's event stream as it arrives; when it breaks off (the owner was killed, paused
    past the read timeout, cut), an ``event: end`` reason ``moved`` after the last whole frame,
    so a client reconnects at once instead of seeing an error."""
    tail = b""
    try:
        async for chunk in chunks:
            if chunk:
                tail = chunk[-2:] if len(chunk) >= 2 else tail[-1:] + chunk
                yield chunk
    except httpx.HTTPError as exc:
        log.info("cluster: a relayed event stream broke off (%s)", type(exc).__name__)
        if at_frame_boundary(tail):
            yield end_frame(MOVED_REASON, None)
    finally:
        release()


async def _stream(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return  # the client went away: the peer sees a short body and answers 4xx
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def is_forwarded(request: Request) -> bool:
    """The request came from a peer instance (checked signature): serve it here, do not forward."""
    return bool(request.scope.get("state", {}).get("cluster_forwarded"))


def signed_out(request: Request) -> bool:
    """Cluster routing found the user not stored, or needing to sign in again, anywhere."""
    return bool(request.scope.get("state", {}).get("cluster_signed_out"))


def buffered_body(request: Request) -> bytes | None:
    return request.scope.get("state", {}).get("cluster_body")


class ForwardingMiddleware:
    """Pure ASGI, so streamed bodies pass through untouched both ways."""

    def __init__(self, app: ASGIApp, ctx: "ApiContext") -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = self.ctx
        forwarder = ctx.forwarder
        ownership = getattr(ctx.sessions, "ownership", None)
        if scope["type"] != "http" or forwarder is None or ownership is None:
            await self.app(scope, receive, send)
            return
        # one pass over the raw headers (no Request/Headers objects on this path)
        authorization = peer = hops = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == PEER_HEADER_BYTES:
                peer = value
            elif name == HOP_HEADER_BYTES:
                hops = value
        state = scope.setdefault("state", {})
        if peer is not None:
            if hops is not None and hops.isdigit() and int(hops) >= MAX_HOPS \
                    and forwarder.auth.verify(peer.decode("latin-1"), scope["method"], _target(scope)) is not None:
                state["cluster_forwarded"] = True
        path = scope["path"]
        if path in LOCAL_PATHS or state.get("cluster_forwarded"):
            await self.app(scope, receive, send)
            return
        if path == "/auth" and scope["method"] == "POST":
            await self._buffered(scope, receive, send)
            return
        login = await self._login(authorization)
        if login is None:
            await self.app(scope, receive, send)  # the route answers 401/403 itself
            return
        try:
            route = await ownership.route(login)
        except StoreError as exc:
            log.warning("cluster: cannot route a request of %s: %s", login, exc)
            await error_response(503, "store unavailable", {"Retry-After": "1"})(scope, receive, send)
            return
        if route.local:
            if route.signed_out:
                state["cluster_signed_out"] = True  # the routes answer as for a user not signed in
            await self.app(scope, receive, send)
        elif route.url:
            streams = ctx.streams
            if streams is not None and path == STREAM_PATH:
                try:
                    release = streams.hop()  # 429 beyond [sse] maxStreams here
                except ApiError as exc:
                    await error_response(exc.status, exc.message, exc.headers)(scope, receive, send)
                    return
                response = await forwarder.forward_stream(Request(scope, receive), route.url, ctx.config.sse, release)
                await response(scope, receive, send)
            else:
                await forwarder.forward_asgi(scope, receive, send, route.url)
        else:
            await error_response(503, MOVING, {"Retry-After": str(route.retry_after)})(scope, receive, send)

    async def _login(self, header: bytes | None) -> str | None:
        if not header:
            return None
        scheme, _, value = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        try:
            claims = await self.ctx.tokens.verify(value.strip())
        except InvalidToken:
            return None
        return claims.sub

    async def _buffered(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /auth``: keep the (small) body so the handler can forward it to the owner."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                await error_response(413, "request body too large")(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        scope["state"]["cluster_body"] = body
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
