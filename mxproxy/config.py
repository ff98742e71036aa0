"""Typed configuration loaded from TOML.

Every key of MX Proxy 2.3 keeps its name and meaning (``provisioning``, ``[apps]``, ``logName``,
``[voip] apnTTL``, ``[voip.apn]``, ``[voip.fcm]``, ``[jwt] tokenTTL/signKeyTTL``); our additions
live in their own sections. A bad value fails at start with the key's dotted name in the message,
so an operator never has to guess which line is wrong.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import ssl
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from mxproxy.durations import DurationError, parse_duration

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python < 3.11
    import tomli as tomllib

log = logging.getLogger(__name__)

DEFAULT_PROVISIONING = "https://config.connector73.net/config"
# The store used when neither --db, DB nor [server] db names one (the Docker image: /db/mxproxy.db).
DEFAULT_DB_ENV = "MXPROXY_DEFAULT_DB"


class ConfigError(ValueError):
    """A config value is missing or wrong; the message names the key."""


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name a typo most likely meant (case-insensitive), or None."""
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else None


def unknown_key(path: str, name: str, known: Iterable[str], *, table: bool = False) -> ConfigError:
    """The one-line error for a key nobody declared, with the closest known name as a hint."""
    dotted = f"{path}.{name}" if path else name
    known = sorted(set(known))
    match = closest(name, known)
    if match:
        hint = f"did you mean {match}?"
    else:
        hint = f"known: {', '.join(known)}" if known else "this table takes no keys"
    return ConfigError(f"{dotted}: unknown {'table' if table else 'key'} ({hint})")


class _Section:
    """Reads one TOML table, remembering the dotted path for error messages.

    Reading a key with a typed reader *declares* it: once the whole file is parsed, every key no
    reader asked for is an unknown key (``check_unknown``). Tables opened with ``table()`` share
    one list, so a new table is checked without anyone having to remember it.
    """

    def __init__(self, data: Mapping[str, Any], path: str, *, base_dir: Path | None = None,
                 tables: list["_Section"] | None = None) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path or 'config'}: expected a table")
        self.data = data
        self.path = path
        self.base_dir = base_dir or Path.cwd()
        self.seen: set[str] = set()
        self.tables: list[_Section] = tables if tables is not None else []
        self.tables.append(self)

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def raw(self, name: str, default: Any = None) -> Any:
        self.seen.add(name)
        return self.data.get(name, default)

    def string(self, name: str, default: str = "") -> str:
        value = self.raw(name, default)
        if not isinstance(value, str):
            raise ConfigError(f"{self.key(name)}: expected a string, got {type(value).__name__}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.key(name)}: expected true or false")
        return value

    def integer(self, name: str, default: int, minimum: int | None = None) -> int:
        value = self.raw(name, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{self.key(name)}: expected an integer")
        if minimum is not None and value < minimum:
            raise ConfigError(f"{self.key(name)}: must be at least {minimum}")
        return value

    def duration(self, name: str, default: str | float, positive: bool = True) -> float:
        """A Go duration string in seconds; when absent, ``default`` (a string to parse, or seconds).
        ``positive=False`` also accepts ``"0s"`` (never a negative duration)."""
        if not isinstance(default, str) and name not in self.data:
            self.seen.add(name)
            return float(default)
        value = self.raw(name, default)
        if not isinstance(value, str):
            raise ConfigError(f'{self.key(name)}: expected a duration string such as "90s"')
        try:
            seconds = parse_duration(value)
        except DurationError as exc:
            raise ConfigError(f"{self.key(name)}: {exc}") from None
        if positive and seconds <= 0:
            raise ConfigError(f"{self.key(name)}: must be a positive duration")
        if seconds < 0:
            raise ConfigError(f"{self.key(name)}: must not be negative")
        return seconds

    def optional_duration(self, name: str) -> float | None:
        """A positive duration, or None when the key is absent (the caller derives a default)."""
        return self.duration(name, "1s") if name in self.data else self.raw(name)

    def strings(self, name: str) -> list[str]:
        value = self.raw(name, [])
        if isinstance(value, str):
            return [value] if value else []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self.key(name)}: expected a string or a list of strings")
        return list(value)

    def string_map(self, name: str) -> dict[str, str]:
        value = self.raw(name, {})
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.key(name)}: expected a table")
        out: dict[str, str] = {}
        for k, v in value.items():
            if not isinstance(v, str):
                raise ConfigError(f'{self.key(name)}."{k}": expected a string')
            out[str(k)] = v
        return out

    def path_value(self, name: str) -> str | None:
        """A file or folder path, made absolute against the config file's folder (None if unset)."""
        value = self.string(name)
        if not value:
            return None
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else self.base_dir / p)

    def readable_file(self, name: str) -> str | None:
        """A path that must name a readable file now: a typo stops start-up, not the first use."""
        path = self.path_value(name)
        if path is not None:
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise ConfigError(f"{self.key(name)}: cannot read {path}: {exc.strerror}") from None
        return path

    def ca_file(self, name: str) -> str | None:
        """A readable PEM file of CA certificates."""
        path = self.readable_file(name)
        if path is not None:
            try:
                ssl.create_default_context().load_verify_locations(cafile=path)
            except (ssl.SSLError, ValueError) as exc:
                raise ConfigError(f"{self.key(name)}: {path} holds no usable CA certificate ({exc})") from None
        return path

    def read(self, kind: str, name: str, default: Any) -> Any:
        """One declared option by its kind's name (connector options declare theirs this way)."""
        readers = {
            "string": lambda: self.string(name, default),
            "boolean": lambda: self.boolean(name, default),
            "integer": lambda: self.integer(name, default),
            "duration": lambda: self.duration(name, default, positive=False),
            "strings": lambda: self.strings(name) if name in self.data else self.raw(name, default),
            "path": lambda: self.path_value(name) if name in self.data else self.raw(name, default),
        }
        if kind not in readers:
            raise ConfigError(f"{self.key(name)}: option declared with unknown kind {kind!r}")
        return readers[kind]()

    def table(self, name: str) -> "_Section":
        value = self.raw(name, {})
        return _Section(value, self.key(name), base_dir=self.base_dir, tables=self.tables)

    def check_unknown(self, allow: bool = False) -> None:
        """Every key of every table opened from this one must have been read by someone: an
        unknown key stops start-up (one line, with a suggestion), unless ``allow`` only warns."""
        for section in self.tables:
            for name, value in section.data.items():
                if name in section.seen:
                    continue
                error = unknown_key(section.path, name, section.seen, table=isinstance(value, Mapping))
                if not allow:
                    raise error
                log.warning("config: %s; ignored (server.allowUnknownKeys)", error)


def resolve_secret(value: str, key: str, base_dir: Path | None = None) -> str:
    """Resolve ``env:NAME`` and ``file:PATH`` references so secrets can stay out of the file;
    a relative ``file:`` path is relative to ``base_dir`` (the config file's folder)."""
    if value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ConfigError(f"{key}: environment variable {name} is not set")
        return os.environ[name]
    if value.startswith("file:"):
        path = Path(value[5:]).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{key}: cannot read secret file {path}: {exc.strerror}") from None
    return value


@dataclass(frozen=True)
class MXConfig:
    """How we talk to the MX: which connector, TLS policy, protocol timings, session timings.

    ``options`` holds the connector's own ``[mx]`` keys, typed by the connector's declaration
    (``Connector.options``), absent ones at their declared default.
    """

    connector: str = "zultys"
    tls_verify: bool = False
    ca_file: str | None = None  # absolute (relative paths resolve against the config folder)
    cert_fingerprint: str | None = None
    tls_trust_on_first_use: bool = False  # pin each MX's first certificate in the store
    connect_timeout: float = 20.0
    response_timeout: float = 7.0
    keepalive: float = 60.0
    read_deadline: float = 180.0
    call_log_chunk: int = 21
    call_log_idle: float = 1.0
    #: After a call-control command's response (or event), how long to wait for the other one.
    call_reply_grace: float = 0.5
    event_queue: int = 1000
    provisioning_timeout: float = 10.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    forced_logout_delay: float = 300.0
    call_info_ttl: float = 2 * 3600.0
    directory_ttl: float = 60.0  # 0: never cached
    call_log_ttl: float = 30.0  # 0: never cached
    resume_concurrency: int = 100
    resume_wait: float = 5.0
    sign_in_wait: float | None = None  # None: connect + 2 x response timeout + 1 s
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JWTConfig:
    token_ttl: float = 3600.0
    sign_key_ttl: float = 6 * 3600.0
    issuer: str | None = None
    audience: str | None = None
    # how stale an instance's view of a user's token generation (sign-outs elsewhere) may be
    revocation_check: float = 5.0


@dataclass(frozen=True)
class ApnTokenConfig:
    """APNs token (.p8) authentication, ``[voip.apnToken]``: one key signs for many bundles."""

    key_file: str  # absolute
    key_id: str
    team_id: str
    topics: tuple[str, ...]


@dataclass(frozen=True)
class VoipConfig:
    apn_ttl: float = 600.0
    apn: Mapping[str, str] = field(default_factory=dict)
    fcm: Mapping[str, str] = field(default_factory=dict)
    apn_token: ApnTokenConfig | None = None


PUSH_PRESETS = ("compat", "modern")
PUSH_CHOICES = ("voip", "alert", "none")


@dataclass(frozen=True)
class ApnsEndpointConfig:
    """``[push.apns]``: where the APNs gateways are (overridable for staging and tests) and how
    connections are kept."""

    production: str = "api.push.apple.com:443"
    development: str = "api.development.push.apple.com:443"
    ca_file: str | None = None
    ping_interval: float = 60.0  # 0 = no HTTP/2 PINGs on idle connections
    max_connections: int = 4


@dataclass(frozen=True)
class FcmEndpointConfig:
    """``[push.fcm]``: the FCM v1 send endpoint base (``{base}/{project}/messages:send``)."""

    send_url: str = "https://fcm.googleapis.com/v1/projects"
    ca_file: str | None = None
    workers: int = 64  # FCM requests in flight per app


@dataclass(frozen=True)
class PushConfig:
    """``[push]``: which events become which kind of push, and the senders' time budget."""

    preset: str = "compat"
    events: Mapping[str, str] = field(default_factory=dict)  # per-type overrides: type -> voip|alert|none
    call_deadline: float = 10.0  # all attempts of one call push finish within this
    alert_deadline: float = 30.0
    max_attempts: int = 3
    retry_backoff: float = 0.25  # first retry delay; doubles per attempt (with jitter)
    call_expiration: float = 30.0  # apns-expiration / FCM ttl for voip pushes
    alert_expiration: float = 86400.0
    concurrency: int = 64  # sends in flight at once, per provider (dispatcher)
    queue_size: int = 10_000  # MX events waiting for the dispatcher; beyond it they are dropped
    apns: ApnsEndpointConfig = field(default_factory=ApnsEndpointConfig)
    fcm: FcmEndpointConfig = field(default_factory=FcmEndpointConfig)


@dataclass(frozen=True)
class ServerConfig:
    port: str = "8000"
    admin: str = "127.0.0.1:8043"
    db: str = "mxproxy.db"
    store_key: str | None = None
    admin_token: str | None = None
    allow_unknown_keys: bool = False  # forward compatibility: unknown keys warn instead of failing
    # what a client may make us hold (docs/operations.md, "Connection limits")
    admin_hosts: tuple[str, ...] = ()  # Host names the admin API answers besides its bind/loopback
    keep_alive_timeout: float = 20.0  # idle keep-alive connection closed after this
    header_timeout: float = 10.0  # a request's headers must arrive within this of connect/last answer
    max_connections: int = 2000  # per listener; beyond it requests answer 503
    max_conferences: int = 20  # per user; POST /conferences beyond it answers 409
    idempotency_ttl: float = 600.0  # how long an Idempotency-Key's first outcome is replayed
    idempotency_keys: int = 10_000  # remembered outcomes per instance (oldest dropped first)
    # reverse proxies whose X-Forwarded-For names the client (addresses or CIDR networks)
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class SignInLimitsConfig:
    """``[signin]``: attempt limits on ``POST /auth`` (mxproxy/auth/signin_limits.py)."""

    enabled: bool = True
    per_client: str = "600/minute;6000/hour"  # all attempts from one client address (IPv6: its /64)
    per_user: str = "30/minute;100/hour;300/day"  # attempts naming one sign-in name
    failure_cost: int = 5  # a refused attempt counts this many
    storage: str = "memory://"  # or redis://host:6379/0 (rediss:// for TLS) to share between instances
    storage_prefix: str = "mxproxy-signin"  # Redis key prefix


LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class LogConfig:
    """``[log]``: how lines look (the file itself is the original's top-level ``logName``)."""

    format: str = "text"  # "json": one JSON object per line, with context fields


@dataclass(frozen=True)
class ClusterConfig:
    """``[cluster]``: several instances on one PostgreSQL store as one service."""

    advertise: str | None = None  # base URL peers reach this instance's public API at
    lease_ttl: float = 15.0
    instance_id: str | None = None  # default: generated, kept for the process


@dataclass(frozen=True)
class EventsConfig:
    """``[events]``: the normalised per-user event stream (docs/events.md). Off by default; the
    ``[sse]`` and ``[webhooks]`` features switch it on for themselves (``EventBus.require``)."""

    enabled: bool = False
    history_size: int = 200  # events kept per user for replay (Last-Event-ID)
    history_age: float = 600.0  # seconds an event stays replayable


@dataclass(frozen=True)
class SSEConfig:
    """``[sse]``: the live event stream ``GET /events`` (mxproxy/api/events.py); off by default."""

    enabled: bool = False
    max_per_user: int = 5  # open streams of one user (all on the user's owner in a cluster); beyond: 429
    max_streams: int = 1000  # open streams on this instance, forwarded ones included; beyond: 429
    heartbeat: float = 15.0  # a comment line after this long without a write (proxies, dead peers)
    queue_size: int = 256  # events waiting for one slow reader; beyond: the stream ends ("overflow")
    write_timeout: float = 30.0  # one write blocked this long (a reader that stopped reading): cut
    retry: float = 2.0  # the reconnection delay sent to EventSource clients (`retry:`)
    max_duration: float = 0.0  # a stream ends ("max duration") after this long; 0 = only when told


@dataclass(frozen=True)
class WebhooksConfig:
    """``[webhooks]``: signed deliveries of events to subscribed URLs (docs/webhooks.md)."""

    enabled: bool = False
    allow_networks: tuple[str, ...] = ()  # private/loopback/... ranges webhook URLs may reach anyway
    retry_for: float = 24 * 3600.0  # a delivery is retried this long, then parked as failed
    retry_min: float = 2.0  # first retry delay; doubles per attempt (with jitter)
    retry_max: float = 600.0  # longest delay between two attempts
    timeout: float = 10.0  # one request, connect to answer
    claim_ttl: float = 60.0  # a claimed delivery is another instance's to take after this
    poll_interval: float = 1.0  # how often the outbox is checked for due rows besides local wake-ups
    disable_after: int = 20  # parked deliveries in a row that disable an endpoint; 0 = never
    concurrency: int = 32  # requests in flight per instance
    queue_size: int = 10_000  # events waiting for the outbox writer; beyond it they are dropped
    max_webhooks: int = 100
    retention: float = 7 * 24 * 3600.0  # delivered and parked rows are kept this long
    ca_file: str | None = None  # an extra CA receivers' certificates may chain to


@dataclass(frozen=True)
class AzureConfig:
    tenants: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    jwks_url: str = "https://login.microsoftonline.com/common/discovery/v2.0/keys"
    clock_skew: float = 120.0

    @property
    def enabled(self) -> bool:
        return bool(self.audiences)


@dataclass(frozen=True)
class Config:
    provisioning: str = DEFAULT_PROVISIONING
    apps: Mapping[str, str] = field(default_factory=dict)
    log_name: str = "/var/log/mxproxy.log"
    voip: VoipConfig = field(default_factory=VoipConfig)
    jwt: JWTConfig = field(default_factory=JWTConfig)
    mx: MXConfig = field(default_factory=MXConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    azure: AzureConfig = field(default_factory=AzureConfig)
    static: Mapping[str, Any] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)
    push: PushConfig = field(default_factory=PushConfig)
    log: LogConfig = field(default_factory=LogConfig)
    source: Path | None = None  # the config file, when loaded from one
    signin: SignInLimitsConfig = field(default_factory=SignInLimitsConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    sse: SSEConfig = field(default_factory=SSEConfig)

    def resolve_path(self, path: str) -> Path:
        """Paths in the config are relative to the config file's folder, as in the original."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p


def _connector_options(s: _Section, connector: str) -> dict[str, Any]:
    """The connector's own ``[mx]`` keys, read as the connector declares them."""
    from mxproxy.connectors.registry import declared_options  # the registry imports this module

    return {name: s.read(option.kind, name, option.default)
            for name, option in declared_options(connector).items()}


def _mx(s: _Section) -> MXConfig:
    connector = s.string("connector", "zultys")
    fingerprint = s.string("certFingerprint") or None
    if fingerprint is not None:
        digits = fingerprint.replace(":", "").lower()
        if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
            raise ConfigError(f"{s.key('certFingerprint')}: expected a SHA-256 fingerprint (64 hex digits)")
        fingerprint = digits
    d = MXConfig
    cfg = MXConfig(
        connector=connector,
        tls_verify=s.boolean("tlsVerify", False),
        ca_file=s.ca_file("caFile"),
        cert_fingerprint=fingerprint,
        tls_trust_on_first_use=s.boolean("tlsTrustOnFirstUse", False),
        connect_timeout=s.duration("connectTimeout", "20s"),
        response_timeout=s.duration("responseTimeout", "7s"),
        keepalive=s.duration("keepalive", "60s"),
        read_deadline=s.duration("readDeadline", "3m"),
        call_log_chunk=s.integer("callLogChunk", 21, minimum=1),
        call_log_idle=s.duration("callLogIdle", "1s"),
        call_reply_grace=s.duration("callReplyGrace", "500ms"),
        event_queue=s.integer("eventQueue", 1000, minimum=1),
        provisioning_timeout=s.duration("provisioningTimeout", d.provisioning_timeout),
        reconnect_min=s.duration("reconnectMin", d.reconnect_min),
        reconnect_max=s.duration("reconnectMax", d.reconnect_max),
        forced_logout_delay=s.duration("forcedLogoutDelay", d.forced_logout_delay),
        call_info_ttl=s.duration("callInfoTTL", d.call_info_ttl),
        directory_ttl=s.duration("directoryTTL", d.directory_ttl, positive=False),
        call_log_ttl=s.duration("callLogTTL", d.call_log_ttl, positive=False),
        resume_concurrency=s.integer("resumeConcurrency", d.resume_concurrency, minimum=1),
        resume_wait=s.duration("resumeWait", d.resume_wait),
        sign_in_wait=s.optional_duration("signInWait"),
        options=_connector_options(s, connector),
    )
    if cfg.read_deadline <= cfg.keepalive:
        raise ConfigError(f"{s.key('readDeadline')}: must be longer than mx.keepalive")
    if cfg.tls_trust_on_first_use and cfg.cert_fingerprint:
        raise ConfigError(f"{s.key('tlsTrustOnFirstUse')}: not with mx.certFingerprint (that pin already "
                          "decides which certificate is trusted)")
    if cfg.reconnect_max < cfg.reconnect_min:
        raise ConfigError(f"{s.key('reconnectMax')}: must not be shorter than mx.reconnectMin")
    return cfg


def _apn_token(voip_s: _Section) -> ApnTokenConfig | None:
    if "apnToken" not in voip_s.data:
        return None
    s = voip_s.table("apnToken")
    key_file = s.path_value("keyFile") or ""  # a credential: one that fails to load is reported, not fatal
    key_id = s.string("keyId")
    team_id = s.string("teamId")
    topics = tuple(s.strings("topics"))
    for name, value in (("keyFile", key_file), ("keyId", key_id), ("teamId", team_id)):
        if not value:
            raise ConfigError(f"{s.key(name)}: required for APNs token authentication")
    if not topics:
        raise ConfigError(f"{s.key('topics')}: list the app bundle ids this key may push to")
    return ApnTokenConfig(key_file=key_file, key_id=key_id, team_id=team_id, topics=topics)


def _host_port(s: _Section, name: str, default: str) -> str:
    value = s.string(name, default)
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f'{s.key(name)}: expected "host:port", got {value!r}')
    return value


def _push(s: _Section) -> PushConfig:
    preset = s.string("preset", "compat")
    if preset not in PUSH_PRESETS:
        raise ConfigError(f"{s.key('preset')}: expected one of {', '.join(PUSH_PRESETS)}, got {preset!r}")
    events = s.string_map("events")
    for event_type, choice in events.items():
        if choice not in PUSH_CHOICES:
            raise ConfigError(
                f"{s.key('events')}.{event_type}: expected one of {', '.join(PUSH_CHOICES)}, got {choice!r}"
            )
    apns_s = s.table("apns")
    apns = ApnsEndpointConfig(
        production=_host_port(apns_s, "production", ApnsEndpointConfig.production),
        development=_host_port(apns_s, "development", ApnsEndpointConfig.development),
        ca_file=apns_s.ca_file("caFile"),
        ping_interval=apns_s.duration("pingInterval", "60s", positive=False),
        max_connections=apns_s.integer("maxConnections", 4, minimum=1),
    )
    fcm_s = s.table("fcm")
    send_url = fcm_s.string("sendURL", FcmEndpointConfig.send_url).rstrip("/")
    if not send_url.startswith(("https://", "http://")):
        raise ConfigError(f"{fcm_s.key('sendURL')}: expected an http(s) URL")
    fcm = FcmEndpointConfig(
        send_url=send_url,
        ca_file=fcm_s.ca_file("caFile"),
        workers=fcm_s.integer("workers", 64, minimum=1),
    )
    cfg = PushConfig(
        preset=preset,
        events=events,
        call_deadline=s.duration("callDeadline", "10s"),
        alert_deadline=s.duration("alertDeadline", "30s"),
        max_attempts=s.integer("maxAttempts", 3, minimum=1),
        retry_backoff=s.duration("retryBackoff", "250ms"),
        call_expiration=s.duration("callExpiration", "30s"),
        alert_expiration=s.duration("alertExpiration", "24h"),
        concurrency=s.integer("concurrency", 64, minimum=1),
        queue_size=s.integer("queueSize", 10_000, minimum=1),
        apns=apns,
        fcm=fcm,
    )
    return cfg


def _networks(s: _Section, name: str) -> tuple[str, ...]:
    """Addresses or CIDR networks (``10.0.0.0/8``, ``::1``), each checked."""
    values = []
    for value in s.strings(name):
        try:
            values.append(str(ipaddress.ip_network(value, strict=False) if "/" in value else ipaddress.ip_address(value)))
        except ValueError:
            raise ConfigError(f"{s.key(name)}: {value!r} is not an IP address or network (e.g. \"10.0.0.0/8\")") from None
    return tuple(values)


def _rate(s: _Section, name: str, default: str) -> str:
    """A ``limits`` rate string such as ``"30/minute;100/hour"``."""
    from limits import parse_many

    value = s.string(name, default)
    try:
        if not parse_many(value):
            raise ValueError
    except ValueError:
        raise ConfigError(f'{s.key(name)}: expected rates such as "30/minute;100/hour", got {value!r}') from None
    return value


def _signin(s: _Section) -> SignInLimitsConfig:
    storage = s.string("storage", SignInLimitsConfig.storage)
    if not storage.startswith(("memory://", "redis://", "rediss://")):
        raise ConfigError(f'{s.key("storage")}: expected "memory://" or a redis:// URL, got {storage!r}')
    return SignInLimitsConfig(
        enabled=s.boolean("enabled", True),
        per_client=_rate(s, "perClient", SignInLimitsConfig.per_client),
        per_user=_rate(s, "perUser", SignInLimitsConfig.per_user),
        failure_cost=s.integer("failureCost", SignInLimitsConfig.failure_cost, minimum=1),
        storage=storage,
        storage_prefix=s.string("storagePrefix", SignInLimitsConfig.storage_prefix) or SignInLimitsConfig.storage_prefix,
    )
def _sse(s: _Section) -> SSEConfig:
    d = SSEConfig
    cfg = SSEConfig(
        enabled=s.boolean("enabled", d.enabled),
        max_per_user=s.integer("maxPerUser", d.max_per_user, minimum=1),
        max_streams=s.integer("maxStreams", d.max_streams, minimum=1),
        heartbeat=s.duration("heartbeat", d.heartbeat),
        queue_size=s.integer("queueSize", d.queue_size, minimum=1),
        write_timeout=s.duration("writeTimeout", d.write_timeout),
        retry=s.duration("retry", d.retry),
        max_duration=s.duration("maxDuration", d.max_duration, positive=False),
    )
    if cfg.max_per_user > cfg.max_streams:
        raise ConfigError(f"{s.key('maxPerUser')}: must not be more than sse.maxStreams")
    return cfg


def _cluster(s: _Section) -> ClusterConfig:
    configured = s.string("advertise")  # read (declared) even when the environment wins
    advertise = (os.environ.get("ADVERTISE") or configured).strip().rstrip("/") or None
    if advertise is not None:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(advertise)
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            parts, port_ok = None, False
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok \
                or parts.path not in ("", "/") or parts.query or parts.username:
            raise ConfigError(f"{s.key('advertise')}: expected a base URL such as http://10.0.0.5:8000, got {advertise!r}")
    lease_ttl = s.duration("leaseTTL", "15s")
    if lease_ttl < 1.0:
        raise ConfigError(f"{s.key('leaseTTL')}: must be at least 1s")
    # env INSTANCE_ID wins (one config file for several instances: a systemd template sets it)
    configured_id = s.string("instanceId")  # read (declared) even when the environment wins
    instance_id = (os.environ.get("INSTANCE_ID") or configured_id).strip() or None
    if instance_id is not None and (len(instance_id) > 100 or any(c.isspace() for c in instance_id)):
        raise ConfigError(f"{s.key('instanceId')}: at most 100 characters, no spaces")
    return ClusterConfig(advertise=advertise, lease_ttl=lease_ttl, instance_id=instance_id)


#: Upper bound of ``[events] historySize``: per user, so memory is this x users x ~1 KiB.
MAX_EVENT_HISTORY = 10_000


def _events(s: _Section) -> EventsConfig:
    size = s.integer("historySize", EventsConfig.history_size, minimum=0)
    if size > MAX_EVENT_HISTORY:
        raise ConfigError(f"{s.key('historySize')}: at most {MAX_EVENT_HISTORY} (events kept per user)")
    return EventsConfig(
        enabled=s.boolean("enabled", EventsConfig.enabled),
        history_size=size,
        history_age=s.duration("historyAge", "10m"),
    )


def _webhooks(s: _Section) -> WebhooksConfig:
    d = WebhooksConfig
    cfg = WebhooksConfig(
        enabled=s.boolean("enabled", False),
        allow_networks=_networks(s, "allowNetworks"),
        retry_for=s.duration("retryFor", "24h"),
        retry_min=s.duration("retryMin", "2s"),
        retry_max=s.duration("retryMax", "10m"),
        timeout=s.duration("timeout", "10s"),
        claim_ttl=s.duration("claimTTL", "60s"),
        poll_interval=s.duration("pollInterval", "1s"),
        disable_after=s.integer("disableAfter", d.disable_after, minimum=0),
        concurrency=s.integer("concurrency", d.concurrency, minimum=1),
        queue_size=s.integer("queueSize", d.queue_size, minimum=1),
        max_webhooks=s.integer("maxWebhooks", d.max_webhooks, minimum=1),
        retention=s.duration("retention", "168h"),
        ca_file=s.ca_file("caFile"),
    )
    if cfg.retry_max < cfg.retry_min:
        raise ConfigError(f"{s.key('retryMax')}: must not be shorter than webhooks.retryMin")
    if cfg.claim_ttl <= cfg.timeout:
        raise ConfigError(f"{s.key('claimTTL')}: must be longer than webhooks.timeout (a claim must outlive its request)")
    return cfg


def parse_config(data: Mapping[str, Any], base_dir: Path | None = None) -> Config:
    """Build a Config from already-parsed TOML data; relative paths resolve against ``base_dir``.

    Every key is read here by a typed reader, and that read is its declaration: a key nobody
    reads is an unknown key and stops start-up (``[server] allowUnknownKeys`` only warns).
    """
    base_dir = base_dir or Path.cwd()
    root = _Section(data, "", base_dir=base_dir)
    provisioning = root.string("provisioning", DEFAULT_PROVISIONING)
    apps = root.string_map("apps")
    for client_id, secret in list(apps.items()):
        apps[client_id] = resolve_secret(secret, f'apps."{client_id}"', base_dir)
    if not apps:
        raise ConfigError("apps: oauth2 apps not configured (the [apps] section must list at least one client)")

    voip_s = root.table("voip")
    apn = voip_s.string_map("apn")
    for cert_file, password in list(apn.items()):
        apn[cert_file] = resolve_secret(password, f'voip.apn."{cert_file}"', base_dir)
    voip = VoipConfig(
        apn_ttl=voip_s.duration("apnTTL", "10m"),
        apn=apn,
        fcm=voip_s.string_map("fcm"),
        apn_token=_apn_token(voip_s),
    )

    jwt_s = root.table("jwt")
    jwt_cfg = JWTConfig(
        token_ttl=jwt_s.duration("tokenTTL", "1h"),
        sign_key_ttl=jwt_s.duration("signKeyTTL", "6h"),
        issuer=jwt_s.string("issuer") or None,
        audience=jwt_s.string("audience") or None,
        revocation_check=jwt_s.duration("revocationCheck", "5s", positive=False),
    )

    server_s = root.table("server")
    store_key = server_s.string("storeKey") or os.environ.get("MXPROXY_STORE_KEY") or None
    if store_key:
        store_key = resolve_secret(store_key, "server.storeKey", base_dir)
    admin_token = server_s.string("adminToken") or None
    if admin_token:
        admin_token = resolve_secret(admin_token, "server.adminToken", base_dir)
    server = ServerConfig(
        port=str(server_s.raw("port", "8000")),
        admin=str(server_s.raw("admin", "127.0.0.1:8043")),
        db=server_s.string("db", os.environ.get(DEFAULT_DB_ENV) or "mxproxy.db"),
        store_key=store_key,
        admin_token=admin_token,
        allow_unknown_keys=server_s.boolean("allowUnknownKeys", False),
        admin_hosts=tuple(server_s.strings("adminHosts")),
        keep_alive_timeout=server_s.duration("keepAliveTimeout", "20s"),
        header_timeout=server_s.duration("headerTimeout", "10s"),
        max_connections=server_s.integer("maxConnections", 2000, minimum=1),
        max_conferences=server_s.integer("maxConferences", 20, minimum=1),
        idempotency_ttl=server_s.duration("idempotencyTTL", "10m"),
        idempotency_keys=server_s.integer("idempotencyKeys", 10_000, minimum=1),
        trusted_proxies=_networks(server_s, "trustedProxies"),
    )

    az_s = root.table("azure")
    azure = AzureConfig(
        tenants=tuple(az_s.strings("tenants")),
        audiences=tuple(az_s.strings("audience")),
        jwks_url=az_s.string("jwksURL", AzureConfig.jwks_url),
        clock_skew=az_s.duration("clockSkew", "2m"),
    )

    mx_cfg = _mx(root.table("mx"))
    static = root.raw("static", {})
    if not isinstance(static, Mapping):
        raise ConfigError("static: expected a table")

    push_cfg = _push(root.table("push"))
    signin_cfg = _signin(root.table("signin"))
    cluster_cfg = _cluster(root.table("cluster"))
    webhooks_cfg = _webhooks(root.table("webhooks"))
    events_cfg = _events(root.table("events"))
    sse_cfg = _sse(root.table("sse"))

    log_s = root.table("log")
    log_format = log_s.string("format", "text")
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"{log_s.key('format')}: expected one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    log_cfg = LogConfig(format=log_format)

    cfg = Config(
        provisioning=provisioning,
        apps=apps,
        log_name=root.string("logName", "/var/log/mxproxy.log"),
        voip=voip,
        jwt=jwt_cfg,
        mx=mx_cfg,
        server=server,
        azure=azure,
        static=dict(static),
        base_dir=base_dir,
        push=push_cfg,
        log=log_cfg,
        signin=signin_cfg,
        cluster=cluster_cfg,
        webhooks=webhooks_cfg,
        events=events_cfg,
        sse=sse_cfg,
    )
    root.check_unknown(allow=server.allow_unknown_keys)
    return cfg


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML config file; relative paths inside resolve against its folder."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: {exc}") from None
    config = parse_config(data, base_dir=p.resolve().parent)
    return replace(config, source=p.resolve())
