"""APNs over HTTP/2 with aioapns: certificate auth (``[voip.apn]``) and token auth
(``[voip.apnToken]``).

aioapns is used for what it does well (HTTP/2 framing, the connection pool, JWT provider tokens).
We subclass its protocol and pools to:

* connect to a configured ``host:port`` with our own SSL context (staging gateways, tests);
* send exactly our bytes (compact JSON, checked against Apple's size limits before sending);
* send one attempt per call: retries, backoff and the hard deadline belong to ``results``;
* keep connections warm: idle lifetime ``[voip] apnTTL`` (aioapns closes after 10 s) and HTTP/2
  PINGs every ``[push.apns] pingInterval`` to notice a dead peer before a call push does;
* answer non-200 responses that carry no body, and stream resets, instead of hanging.

Pools are created lazily inside the running loop, one per (credential, apns-topic, gateway).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import tempfile
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

from aioapns.common import NotificationRequest, NotificationResult, PushType
from aioapns.connection import (
    APNsBaseClientProtocol,
    APNsCertConnectionPool,
    APNsKeyConnectionPool,
    APNsTLSClientProtocol,
)
from aioapns.exceptions import ConnectionClosed
from aioapns.exceptions import ConnectionError as ApnsConnectionError
from aioapns.exceptions import MaxAttemptsExceeded
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import PingAckReceived, PingReceived, StreamReset
from h2.exceptions import FlowControlError, NoAvailableStreamIDError, ProtocolError
from hpack import Encoder as HpackEncoder
from hpack import NeverIndexedHeaderTuple

from mxproxy import outbound
from mxproxy.config import PushConfig, VoipConfig
from mxproxy.push.certificates import ApnsCertificate, ApnsSigningKey, CredentialError, load_p8, load_p12
from mxproxy.push.topics import VOIP_SUFFIX, apns_bundle
from mxproxy.push.results import (
    NO_CREDENTIALS,
    REJECTED,
    TOO_LARGE,
    TRANSPORT,
    PushKind,
    PushResult,
    Sender,
    classify_apns,
    send_with_retries,
)
from mxproxy.store.base import DeviceToken

log = logging.getLogger(__name__)

VOIP_PAYLOAD_LIMIT = 5120
ALERT_PAYLOAD_LIMIT = 4096
PRIORITY_IMMEDIATE = 10
USER_AGENT = "mxproxy"


def encode_payload(payload: dict[str, Any]) -> bytes:
    """Compact JSON as Go's ``json.Marshal`` writes it (the original's bytes): no spaces, UTF-8,
    ``<``, ``>``, ``&``, U+2028 and U+2029 escaped."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text.encode()


_ID_BATCH = 256
_random_ids: list[str] = []


def apns_id() -> str:
    """A random (version 4) UUID for ``apns-id``, as ``str(uuid.uuid4())`` spells it, drawn from
    the OS 256 at a time: one ``getrandom`` call and one ``UUID`` object per push cost more
    than the rest of building the request."""
    if not _random_ids:
        pool = bytearray(os.urandom(16 * _ID_BATCH))
        for n in range(_ID_BATCH):
            pool[16 * n + 6] = pool[16 * n + 6] & 0x0F | 0x40  # version 4
            pool[16 * n + 8] = pool[16 * n + 8] & 0x3F | 0x80  # RFC 4122 variant
        text = pool.hex()
        _random_ids.extend(
            f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" for h in (text[32 * n:32 * n + 32] for n in range(_ID_BATCH))
        )
    return _random_ids.pop()


def apns_topic(topic: str, kind: str) -> str:
    """The ``apns-topic`` header: VoIP pushes go to ``<bundle>.voip``, alerts to the bare bundle,
    whichever of the two forms the token was registered under."""
    bundle = apns_bundle(topic)
    return f"{bundle}{VOIP_SUFFIX}" if kind == "voip" else bundle


def payload_limit(kind: str) -> int:
    return VOIP_PAYLOAD_LIMIT if kind == "voip" else ALERT_PAYLOAD_LIMIT


def split_host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


# ------------------------------------------------------------------------------------------
# aioapns subclasses
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ConnectionSettings:
    host: str
    port: int
    idle_ttl: float
    ping_interval: float


#: Our request headers are built below, lower-case, pseudo-headers first, without connection
#: headers: h2's per-request normalising and validating of them (a tenth of a push's CPU, issue 14)
#: has nothing to find. Inbound validation stays on.
_H2_CONFIG = H2Configuration(client_side=True, header_encoding=None, validate_outbound_headers=False,
                             normalize_outbound_headers=False)


class _PlainLiteralEncoder(HpackEncoder):
    """HPACK without Huffman coding of literals. The only literals after a connection's first
    request are the per-push ``:path``, ``apns-id`` and ``apns-expiration`` (~120 bytes): Huffman
    would save ~30 of them at the price of a pure-Python loop over every byte, per push."""

    def encode(self, headers: Any, huffman: bool = True) -> bytes:  # noqa: ARG002 - h2 passes the default
        return super().encode(headers, huffman=False)


class _H2Connection(H2Connection):
    """Hands PING acks and stream resets to the protocol instead of aioapns's "unknown event"."""

    def __init__(self, protocol: "_ApnsProtocol") -> None:
        super().__init__(config=_H2_CONFIG)
        self.encoder = _PlainLiteralEncoder()
        self._protocol = protocol

    def receive_data(self, data: bytes) -> list:  # type: ignore[override]
        kept = []
        for event in super().receive_data(data):
            if isinstance(event, PingAckReceived):
                self._protocol.ping_outstanding = False
            elif isinstance(event, PingReceived):
                pass  # h2 already queued the ack
            elif isinstance(event, StreamReset):
                self._protocol.on_stream_reset(event.stream_id)
            else:
                kept.append(event)
        return kept


class _ApnsProtocol(APNsTLSClientProtocol):
    """One HTTP/2 connection to a configured APNs endpoint."""

    def __init__(
        self,
        apns_topic: str,
        loop: asyncio.AbstractEventLoop,
        on_connection_lost: Callable[[APNsBaseClientProtocol], Any],
        auth_provider: Any = None,
        *,
        settings: _ConnectionSettings,
    ) -> None:
        super().__init__(apns_topic, loop, on_connection_lost, auth_provider)  # type: ignore[arg-type]
        self.conn = _H2Connection(self)
        self.APNS_SERVER = settings.host
        self.settings = settings
        self.last_used = self.loop.time()
        self.ping_outstanding = False
        # Headers the same on every request, as bytes (h2 would encode str ones per request). They
        # enter the HPACK table once and cost a byte each afterwards; the per-push values are sent
        # never-indexed, so the table stays a handful of entries and each look-up in it short.
        self._host = (b"host", settings.host.encode()), (b"user-agent", USER_AGENT.encode()), \
            (b"content-type", b"application/json")

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    async def send_notification(self, request: NotificationRequest) -> NotificationResult:
        stream_id = await self.free_channels.acquire()
        self.last_used = self.loop.time()
        headers: list[tuple[bytes, bytes]] = [
            (b":method", b"POST"),
            (b":scheme", b"https"),
            NeverIndexedHeaderTuple(b":path", b"/3/device/" + request.device_token.encode()),
            *self._host,
            NeverIndexedHeaderTuple(b"apns-id", request.notification_id.encode()),
            (b"apns-topic", (request.apns_topic or self.apns_topic).encode()),
        ]
        if request.push_type is not None:
            headers.append((b"apns-push-type", request.push_type.value.encode()))
        if request.priority is not None:
            headers.append((b"apns-priority", str(request.priority).encode()))
        if request.time_to_live is not None:
            headers.append(NeverIndexedHeaderTuple(b"apns-expiration",
                                                   str(int(time.time()) + request.time_to_live).encode()))
        if self.auth_provider:  # never indexed, as h2's normalising would have marked it
            headers.append(NeverIndexedHeaderTuple(b"authorization", self.auth_provider.get_header().encode()))
        body: bytes = request.message  # type: ignore[assignment]  # pre-encoded by the sender
        future: asyncio.Future[NotificationResult] = self.loop.create_future()
        self.requests[request.notification_id] = future
        self.request_streams[stream_id] = request.notification_id
        try:
            self.conn.send_headers(stream_id=stream_id, headers=headers)
            self.conn.send_data(stream_id=stream_id, data=body, end_stream=True)
            self.flush()
            return await future
        finally:
            self.requests.pop(request.notification_id, None)

    def on_stream_ended(self, stream_id: int) -> None:
        notification_id = self.request_streams.pop(stream_id, None)
        if notification_id is not None:
            future = self.requests.pop(notification_id, None)
            status = self.request_statuses.pop(notification_id, "")
            if future is not None and not future.done():
                # a non-200 answer without a JSON reason body
                future.set_result(NotificationResult(notification_id, status or "0", description=""))
        super().on_stream_ended(stream_id)

    def on_stream_reset(self, stream_id: int) -> None:
        notification_id = self.request_streams.pop(stream_id, None)
        future = self.requests.pop(notification_id, None) if notification_id else None
        if future is not None and not future.done():
            future.set_exception(ConnectionClosed(f"stream {stream_id} reset by the server"))
        self.free_channels.release()

    # keep-alive ----------------------------------------------------------------------------
    def refresh_inactivity_timer(self) -> None:
        """aioapns calls this on every write to close after 10 s idle; we run one periodic
        tick instead that closes after ``idle_ttl`` without sends and pings in between."""
        if self.inactivity_timer is None:
            self._schedule_tick()

    def _schedule_tick(self) -> None:
        periods = [p for p in (self.settings.ping_interval, self.settings.idle_ttl) if p > 0]
        self.inactivity_timer = self.loop.call_later(min(periods), self._tick)

    def _tick(self) -> None:
        self.inactivity_timer = None
        if not self.is_open:
            return
        if not self.requests and self.loop.time() - self.last_used >= self.settings.idle_ttl:
            log.debug("APNs connection to %s idle for %.0fs: closing", self.APNS_SERVER, self.settings.idle_ttl)
            self.close()
            return
        if self.settings.ping_interval > 0:
            if self.ping_outstanding:
                log.warning("APNs connection to %s did not answer a PING: closing", self.APNS_SERVER)
                self.close()
                return
            self.ping_outstanding = True
            self.conn.ping(os.urandom(8))
            assert self.transport is not None
            self.transport.write(self.conn.data_to_send())  # not flush(): a ping is not "use"
        self._schedule_tick()


class _EndpointPoolMixin:
    """Connect to the configured endpoint; one attempt per send (the sender retries)."""

    loop: asyncio.AbstractEventLoop
    ssl_context: ssl.SSLContext | None
    connections: list[APNsBaseClientProtocol]
    settings: _ConnectionSettings

    async def _create_connection(self, apns_protocol_factory: Any) -> APNsBaseClientProtocol:
        _, protocol = await self.loop.create_connection(
            apns_protocol_factory,
            host=self.settings.host,
            port=self.settings.port,
            ssl=self.ssl_context,
            server_hostname=self.settings.host,
        )
        return protocol  # type: ignore[return-value]

    async def send_notification(self, request: NotificationRequest) -> NotificationResult:
        connection = await self.acquire()  # type: ignore[attr-defined]
        return await connection.send_notification(request)

    @property
    def is_warm(self) -> bool:
        return any(getattr(c, "is_open", False) for c in self.connections)


class _CertPool(_EndpointPoolMixin, APNsCertConnectionPool):
    def __init__(self, *, settings: _ConnectionSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.protocol_class = partial(_ApnsProtocol, settings=settings)  # type: ignore[assignment]


class _KeyPool(_EndpointPoolMixin, APNsKeyConnectionPool):
    def __init__(self, *, settings: _ConnectionSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.protocol_class = partial(_ApnsProtocol, settings=settings)  # type: ignore[assignment]


_Pool = _CertPool | _KeyPool
_Credential = ApnsCertificate | ApnsSigningKey


# ------------------------------------------------------------------------------------------
# The sender
# ------------------------------------------------------------------------------------------


class ApnsSender(Sender):
    """Sends to ``apn`` device tokens. Credentials load at construction (startup); a credential
    that fails to load is logged and skipped, as in the original, and listed in ``problems``."""

    provider = "apns"

    def __init__(self, voip: VoipConfig, push: PushConfig, base_dir: Path) -> None:
        self._voip = voip
        self._push = push
        self._base_dir = base_dir
        self.problems: list[str] = []
        self.certificates: list[ApnsCertificate] = []
        self.signing_key: ApnsSigningKey | None = None
        self._credentials: dict[tuple[str, bool], _Credential] = {}
        self._pools: dict[tuple[int, str, bool], _Pool] = {}
        self._ssl_context()  # a bad [push.apns] caFile fails at startup, not at the first push
        self._load_certificates()
        self._load_signing_key()

    # credentials -------------------------------------------------------------------------
    def _path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self._base_dir / p

    def _load_certificates(self) -> None:
        for file, password in self._voip.apn.items():
            try:
                cert = load_p12(self._path(file), password)
            except CredentialError as exc:
                self._problem(f'voip.apn."{file}": {exc}')
                continue
            self.certificates.append(cert)
            for topic, sandbox in cert.topics:
                pair = (apns_bundle(topic), sandbox)
                if pair in self._credentials:
                    log.warning("APNs topic %s%s is in more than one certificate; using %s", pair[0], "~" if pair[1] else "", file)
                self._credentials[pair] = cert
            log.info("APNs certificate %s: topic %s (%s), valid until %s", file, cert.bundle_id,
                     "+".join(n for n, on in (("production", cert.production), ("sandbox", cert.sandbox)) if on),
                     cert.not_valid_after.date())

    def _load_signing_key(self) -> None:
        cfg = self._voip.apn_token
        if cfg is None:
            return
        try:
            key = load_p8(self._path(cfg.key_file), cfg.key_id, cfg.team_id, cfg.topics)
        except CredentialError as exc:
            self._problem(f"voip.apnToken.keyFile: {exc}")
            return
        self.signing_key = key
        for topic in key.topics:  # token auth wins over a certificate for the same app
            self._credentials[(apns_bundle(topic), False)] = key
            self._credentials[(apns_bundle(topic), True)] = key
        log.info("APNs token auth: key %s, team %s, topics %s", key.key_id, key.team_id, ", ".join(key.topics))

    def _problem(self, message: str) -> None:
        log.error("push: %s", message)
        self.problems.append(message)

    @property
    def topics(self) -> frozenset[tuple[str, bool]]:
        """Every (bundle, sandbox) with a credential; a device token may be registered under the
        bundle or ``<bundle>.voip`` (spec §7.7, ``apns_bundle``)."""
        return frozenset(self._credentials)

    def credential_for(self, topic: str, sandbox: bool) -> _Credential | None:
        """The credential for the app behind ``topic`` (a certificate's or a key's topic form)."""
        return self._credentials.get((apns_bundle(topic), sandbox))

    # pools -------------------------------------------------------------------------------
    def _settings(self, sandbox: bool) -> _ConnectionSettings:
        endpoint = self._push.apns.development if sandbox else self._push.apns.production
        host, port = split_host_port(endpoint)
        return _ConnectionSettings(host, port, self._voip.apn_ttl, self._push.apns.ping_interval)

    def _ssl_context(self) -> ssl.SSLContext:
        ca_file = self._push.apns.ca_file
        return outbound.ssl_context(self._path(ca_file) if ca_file else None, key="push.apns.caFile", alpn=["h2"])

    def _pool(self, credential: _Credential, topic: str, sandbox: bool) -> _Pool:
        """One client per credential, topic and gateway; must run inside the event loop."""
        key = (id(credential), topic, sandbox)
        pool = self._pools.get(key)
        if pool is not None:
            return pool
        common: dict[str, Any] = dict(
            settings=self._settings(sandbox),
            topic=topic,
            max_connections=self._push.apns.max_connections,
            max_connection_attempts=1,
            use_sandbox=sandbox,
            ssl_context=self._ssl_context(),
        )
        if isinstance(credential, ApnsSigningKey):
            pool = _KeyPool(key=credential.pem, key_id=credential.key_id, team_id=credential.team_id, **common)
        else:
            pool = self._cert_pool(credential, common)
        self._pools[key] = pool
        return pool

    @staticmethod
    def _cert_pool(cert: ApnsCertificate, common: dict[str, Any]) -> _CertPool:
        # aioapns loads the client certificate from a PEM file: write a private (0600) temp file,
        # let the SSL context read it, and remove it at once.
        fd, name = tempfile.mkstemp(prefix="mxproxy-apns-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(cert.pem)
            return _CertPool(cert_file=name, **common)
        finally:
            os.unlink(name)

    def _close_pool(self, pool: _Pool) -> None:
        for connection in list(pool.connections):
            connection.close()

    # sending -----------------------------------------------------------------------------
    async def send(self, token: DeviceToken, payload: dict, kind: PushKind, *, deadline: float) -> PushResult:
        template = PushResult(self.provider, kind, token, TRANSPORT)
        if token.kind != "apn":
            return replace(template, status=REJECTED, reason=f"not an APNs token (kind {token.kind!r})", attempts=0)
        credential = self.credential_for(token.topic, token.sandbox)
        if credential is None:
            where = f"{token.topic}{'~' if token.sandbox else ''}"
            return replace(template, status=NO_CREDENTIALS, reason=f"no APNs certificate or key for {where}", attempts=0)
        body = encode_payload(payload)
        if len(body) > payload_limit(kind):
            return replace(template, status=TOO_LARGE, reason="PayloadTooLarge", attempts=0)
        topic = apns_topic(token.topic, kind)
        pool = self._pool(credential, topic, token.sandbox)
        expiration = self._push.call_expiration if kind == "voip" else self._push.alert_expiration
        template = PushResult(self.provider, kind, token, TRANSPORT, warm=pool.is_warm)

        async def attempt(timeout: float) -> PushResult:
            warm = pool.is_warm
            request = NotificationRequest(
                device_token=token.token,
                message=body,  # type: ignore[arg-type]
                notification_id=apns_id(),
                time_to_live=int(expiration),
                priority=PRIORITY_IMMEDIATE,
                push_type=PushType.VOIP if kind == "voip" else PushType.ALERT,
                apns_topic=topic,
            )
            try:
                answer = await pool.send_notification(request)
            except (ApnsConnectionError, ConnectionClosed, MaxAttemptsExceeded, NoAvailableStreamIDError,
                    FlowControlError, ProtocolError, OSError) as exc:
                return replace(template, status=TRANSPORT, reason=f"{type(exc).__name__}: {exc}".rstrip(": "), warm=warm)
            http_status = int(answer.status) if str(answer.status).isdigit() else 0
            reason = answer.description or ""
            status, final = classify_apns(http_status, reason)
            return PushResult(self.provider, kind, token, status, reason=reason, final=final, http_status=http_status,
                              warm=warm)

        result = await send_with_retries(
            attempt,
            template,
            deadline=deadline,
            max_attempts=self._push.max_attempts,
            backoff=self._push.retry_backoff,
            on_timeout=lambda: self._close_pool(pool),  # a silent connection is not trusted again
        )
        if not result.ok:
            log.info("APNs %s push to %s…: %s", kind, token.token[:8], result.summary())
        return result

    async def aclose(self) -> None:
        for pool in self._pools.values():
            self._close_pool(pool)
        self._pools.clear()
        await asyncio.sleep(0)
