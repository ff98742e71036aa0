"""A local APNs: HTTP/2 over TLS on 127.0.0.1, written with raw h2 over asyncio.

It behaves like Apple's gateway where our client can tell: echoes ``apns-id``, sends an error
reason as one JSON DATA frame (aioapns parses each DATA frame on its own), and records every
request (headers, body, the client certificate's UID). The answer depends on the device token's
prefix:

=============  ===============================================
``bad``        400 ``BadDeviceToken``
``topic``      400 ``DeviceTokenNotForTopic``
``missing``    400 ``MissingDeviceToken``
``badtopic``   400 ``BadTopic`` (not a verdict about the token)
``gone``       410 ``Unregistered`` (+ ``timestamp``)
``busy``       429 ``TooManyRequests``
``fail``       500 ``InternalServerError``
``flaky500``   500 on the first request for that token, then 200
``flaky429``   429 on the first request for that token, then 200
``bare503``    503 with no body at all
``hang``       never answers
anything else  200
=============  ===============================================
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Callable

from cryptography import x509
from cryptography.x509.oid import NameOID
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    PingReceived,
    RequestReceived,
    StreamEnded,
)
from h2.exceptions import ProtocolError
from hpack import NeverIndexedHeaderTuple

OUTCOMES: dict[str, tuple[int, str | None]] = {
    "badtopic": (400, "BadTopic"),
    "bad": (400, "BadDeviceToken"),
    "topic": (400, "DeviceTokenNotForTopic"),
    "missing": (400, "MissingDeviceToken"),
    "gone": (410, "Unregistered"),
    "busy": (429, "TooManyRequests"),
    "fail": (500, "InternalServerError"),
    "bare503": (503, None),
}


@dataclass
class ApnsRequest:
    path: str
    token: str
    headers: dict[str, str]
    body: bytes
    client_uid: str | None
    connection: int
    never_indexed: frozenset[str] = frozenset()  # header names the client sent HPACK "never indexed"

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class LocalAPNs:
    """Start with ``await server.start()``; ``server.endpoint`` is ``"127.0.0.1:<port>"``."""

    cert_file: str
    key_file: str
    client_ca: str | None = None  # verify (optional) client certificates against this CA
    requests: list[ApnsRequest] = field(default_factory=list)
    on_push: Callable[[ApnsRequest], None] | None = None  # called with every request received
    connections: int = 0
    pings: int = 0
    port: int = 0
    _seen: dict[str, int] = field(default_factory=dict)
    _server: asyncio.AbstractServer | None = None
    _transports: set[asyncio.Transport] = field(default_factory=set)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> "LocalAPNs":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        ctx.set_alpn_protocols(["h2"])
        if self.client_ca:
            ctx.verify_mode = ssl.CERT_OPTIONAL
            ctx.load_verify_locations(self.client_ca)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), "127.0.0.1", 0, ssl=ctx)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for transport in list(self._transports):
            transport.close()
        await asyncio.sleep(0)

    def outcome(self, token: str) -> tuple[int, str | None] | None:
        """(status, reason) for a token, or None to never answer."""
        if token.startswith("hang"):
            return None
        if token.startswith(("flaky500", "flaky429")):
            count = self._seen.get(token, 0)
            self._seen[token] = count + 1
            if count == 0:
                return (500, "InternalServerError") if token.startswith("flaky500") else (429, "TooManyRequests")
            return 200, None
        for prefix, answer in OUTCOMES.items():
            if token.startswith(prefix):
                return answer
        return 200, None


class _Connection(asyncio.Protocol):
    def __init__(self, server: LocalAPNs) -> None:
        self.server = server
        self.conn = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        self.streams: dict[int, tuple[dict[str, str], bytearray, frozenset[str]]] = {}
        self.transport: asyncio.Transport | None = None
        self.number = 0
        self.client_uid: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server._transports.add(self.transport)  # type: ignore[arg-type]
        self.server.connections += 1
        self.number = self.server.connections
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if der:
            uids = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.USER_ID)
            self.client_uid = str(uids[0].value) if uids else ""
        self.conn.initiate_connection()
        self.transport.write(self.conn.data_to_send())  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._transports.discard(self.transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            events = self.conn.receive_data(data)
        except ProtocolError:
            self.transport.close()
            return
        for event in events:
            if isinstance(event, RequestReceived):
                never = frozenset(str(h[0]) for h in event.headers if isinstance(h, NeverIndexedHeaderTuple))
                self.streams[event.stream_id] = (dict(event.headers), bytearray(), never)  # type: ignore[arg-type]
            elif isinstance(event, DataReceived):
                self.streams[event.stream_id][1].extend(event.data)
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, StreamEnded):
                self._respond(event.stream_id)
            elif isinstance(event, PingReceived):
                self.server.pings += 1
            elif isinstance(event, ConnectionTerminated):
                self.transport.close()
                return
        self.transport.write(self.conn.data_to_send())

    def _respond(self, stream_id: int) -> None:
        headers, body, never = self.streams.pop(stream_id)
        path = headers.get(":path", "")
        token = path.rsplit("/", 1)[-1]
        request = ApnsRequest(path, token, headers, bytes(body), self.client_uid, self.number, never)
        self.server.requests.append(request)
        if self.server.on_push is not None:
            self.server.on_push(request)
        answer = self.server.outcome(token)
        if answer is None:
            return
        status, reason = answer
        response = [(":status", str(status)), ("apns-id", headers.get("apns-id", ""))]
        if reason is None:
            self.conn.send_headers(stream_id, response, end_stream=True)
            return
        payload: dict[str, object] = {"reason": reason}
        if status == 410:
            payload["timestamp"] = int(time.time() * 1000)
        data = json.dumps(payload).encode()
        response += [("content-type", "application/json"), ("content-length", str(len(data)))]
        self.conn.send_headers(stream_id, response)
        self.conn.send_data(stream_id, data, end_stream=True)  # one DATA frame
