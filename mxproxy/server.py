"""``mxproxy serve``: the public API and the admin API in one process, on one event loop.

Both HTTP servers are uvicorn instances sharing the loop with the MX sessions, so the admin sees
the live connections without a second store. This module only wires the parts together and owns
the process lifecycle (listen addresses, logging, graceful shutdown on SIGTERM/SIGINT); every
part keeps its own job.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import ipaddress
import logging
import signal
import socket
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import uvicorn

from mxproxy import runtime
from mxproxy.config import Config, ConfigError, ServerConfig, load_config
from mxproxy.logs import RedactingFilter, configure_logging, redact, set_instance
from mxproxy.store import is_postgres_url
from mxproxy.store.base import StoreError

log = logging.getLogger("mxproxy.server")

DEFAULT_PUBLIC_PORT = 8000
DEFAULT_ADMIN_PORT = 8043
ALL_INTERFACES = "0.0.0.0"
LOOPBACK = "127.0.0.1"
WILDCARDS = (ALL_INTERFACES, "::", "")

# How long in-flight requests may run after a shutdown signal before they are cancelled.
GRACEFUL_SHUTDOWN_SECONDS = 10
# Bound on the MX logouts at shutdown so a hung MX cannot keep the process alive.
SESSIONS_STOP_SECONDS = 15.0
# How long the open event streams get to write their end at shutdown (a reader that takes none is cut).
STREAMS_END_SECONDS = 2.0

EXIT_OK = 0
EXIT_STARTUP_FAILED = 1
EXIT_CONFIG = 2


class ListenError(ConfigError):
    """A listen address (``--port``, ``--admin``, ``PORT``, ``ADMIN``) is malformed or unsafe."""


# --------------------------------------------------------------------------------------------
# listen addresses


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    def url(self, scheme: str = "http") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


def parse_listen(value: str | int | None, default_port: int, default_host: str = ALL_INTERFACES,
                 *, key: str = "port") -> Listen:
    """Parse the original's port forms: ``8000``, ``:8000``, ``host:port``, ``host`` (→ default port).

    A bare port number listens on ``default_host``; an empty host before the colon (``:8000``) means
    all interfaces, as in Go's ``net.Listen``. IPv6 literals go in brackets (``[::1]:8000``).
    Port 0 asks the OS for a free port (used by the tests).
    """
    text = "" if value is None else str(value).strip()
    if not text:
        return Listen(default_host, default_port)
    if text.isdigit():
        return Listen(default_host, _port(text, key))
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ListenError(f"{key}: {text!r}: unclosed '[' in IPv6 address")
        host, rest = text[1:end], text[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ListenError(f"{key}: {text!r}: expected ':port' after the IPv6 address")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.count(":") > 1:
        host = text  # a bare IPv6 address without a port
    port = _port(port_text, key) if port_text else default_port
    if not host:
        host = ALL_INTERFACES
    if any(c.isspace() or c in "/@?#" for c in host):
        raise ListenError(f"{key}: {text!r}: not a host name or address")
    return Listen(host, port)


def _port(text: str, key: str) -> int:
    if not text.isdigit():
        raise ListenError(f"{key}: {text!r} is not a port number")
    port = int(text)
    if port > 65535:
        raise ListenError(f"{key}: port {port} is out of range (0-65535)")
    return port


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def admin_listen(value: str | None, admin_token: str | None) -> Listen | None:
    """The admin bind address, or None when disabled (``""``/``off``).

    A bare port binds loopback. The admin API can sign users out and list their tokens, so a
    non-loopback bind is refused unless ``[server] adminToken`` protects it (the original listened
    on all interfaces with no auth, spec §7.1).
    """
    text = "" if value is None else str(value).strip()
    if text.lower() in ("", "off", "none", "false", "disabled"):
        return None
    listen = parse_listen(text, DEFAULT_ADMIN_PORT, LOOPBACK, key="server.admin")
    if not is_loopback(listen.host) and not admin_token:
        raise ListenError(
            f"server.admin: refusing to serve the admin API on non-loopback address {listen.host!r} "
            "without authentication; set [server] adminToken (or bind it to 127.0.0.1)"
        )
    return listen


def bind_socket(listen: Listen) -> socket.socket:
    """Bind before uvicorn starts, so a busy port is a clear error and port 0 is known at once."""
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only when it does, and
    # without it every response written as head + body waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((listen.host, listen.port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {listen.host}:{listen.port}: {exc.strerror}") from None
    return sock


# --------------------------------------------------------------------------------------------
# uvicorn


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us: two servers share one process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _uvicorn_config(app: Any, name: str, *, graceful: int, limits: ServerConfig) -> uvicorn.Config:
    """``limits``: the connection limits of ``[server]`` (keep-alive, header deadline, cap), the
    same for both listeners; each listener counts its own connections."""
    from mxproxy.api.connections import limited_protocol

    return uvicorn.Config(
        app,
        # httptools where installed (bounded like h11 below), with the deadline and the cap
        http=limited_protocol(runtime.http_protocol(), header_timeout=limits.header_timeout,
                              max_connections=limits.max_connections),
        log_config=None,
        access_log=False,
        server_header=False,  # the API sets its own "Server: MXProxy/2.3"
        lifespan="off",  # the parts are started and stopped by ProxyServer, not by the app
        timeout_keep_alive=limits.keep_alive_timeout,
        timeout_graceful_shutdown=graceful,
        h11_max_incomplete_event_size=runtime.MAX_REQUEST_HEAD,
        proxy_headers=False,
        ws="none",
    )


class _HTTPServer:
    """One uvicorn server on a pre-bound socket, run as a task on the current loop."""

    def __init__(self, name: str, listen: Listen, graceful: int, limits: ServerConfig = ServerConfig()) -> None:
        self.name = name
        self.listen = listen
        self.graceful = graceful
        self.limits = limits
        self.sock = bind_socket(listen)
        self.port: int = self.sock.getsockname()[1]
        self.server: _EmbeddedServer | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self, app: Any) -> None:
        self.server = _EmbeddedServer(_uvicorn_config(app, self.name, graceful=self.graceful,
                                                              limits=self.limits))
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]), name=f"uvicorn-{self.name}")
        while not self.server.started:
            if self.task.done():
                self.task.result()  # re-raise the startup failure
                raise RuntimeError(f"{self.name} server stopped during startup")
            await asyncio.sleep(0.01)
        log.info("%s listening on %s", self.name, self.bound_url())

    def bound_url(self) -> str:
        """The address the socket is actually bound to (port 0 resolved)."""
        return Listen(self.listen.host, self.port).url()

    def request_stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True

    def force_stop(self) -> None:
        if self.server is not None:
            self.server.force_exit = True

    async def wait(self) -> None:
        if self.task is not None:
            try:
                await self.task
            except (asyncio.CancelledError, SystemExit):
                pass
        self.close()

    def close(self) -> None:
        self.sock.close()


# --------------------------------------------------------------------------------------------
# the process


def _push_topics(config: Config, push: Any) -> Any:
    """Which token registrations the API accepts: the push dispatcher knows (certificates name
    their topics); without one, the configured FCM app ids and ``[voip.apnToken]`` topics."""
    from mxproxy.push.topics import PushTopics

    topics = getattr(push, "topics", None)
    if topics is not None:
        return topics() if callable(topics) else topics
    apn: list[tuple[str, bool]] = []
    apn_token = getattr(config.voip, "apn_token", None)
    for topic in getattr(apn_token, "topics", ()) or ():
        apn += [(topic, False), (topic, True)]
    return PushTopics.of(apn=apn, fcm=config.voip.fcm.keys())


def freeze_startup_heap() -> None:
    """Move everything alive after start-up (modules, config, resumed MX sessions) out of the
    garbage collector's reach.

    With a few hundred sessions, a full (generation 2) collection walks every one of their objects:
    ~60 ms with the event loop stopped, which showed up as the p99 of push latency
    (docs/benchmarks.md). Frozen objects are not scanned; later collections only walk what was
    created since. ``gc.collect()`` first, so only live objects are frozen."""
    gc.collect()
    gc.freeze()


class ProxyServer:
    """Builds the real parts from a Config and serves them; ``start``/``stop`` are the whole API."""

    def __init__(self, config: Config, *, public: Listen | None = None, admin: Listen | None = None,
                 admin_enabled: bool = True, db: str | None = None,
                 graceful_seconds: int = GRACEFUL_SHUTDOWN_SECONDS, push_topics: Any = None) -> None:
        self.config = config
        self.public_listen = public or parse_listen(config.server.port, DEFAULT_PUBLIC_PORT, key="server.port")
        self.admin_listen = (admin or admin_listen(config.server.admin, config.server.admin_token)
                             if admin_enabled else None)
        self.db = db or config.server.db
        if is_postgres_url(self.db) and not config.server.store_key:
            raise ConfigError("server.storeKey: required with a PostgreSQL store (there is no safe place "
                              "beside the data for a generated key); set it, or MXPROXY_STORE_KEY")
        if is_postgres_url(self.db) and not config.cluster.advertise and self.public_listen.host in WILDCARDS:
            raise ConfigError(
                "cluster.advertise: required when instances share a PostgreSQL store and the API listens "
                "on all interfaces; set it (or ADVERTISE) to the URL peers reach this instance at"
            )
        self.graceful_seconds = graceful_seconds
        self.push_topics = push_topics  # None: what the configured push senders can deliver to
        self.store: Any = None
        self.keyring: Any = None
        self.tokens: Any = None
        self.azure: Any = None
        self.signin_limits: Any = None
        self.provisioner: Any = None
        self.connector: Any = None
        self.sessions: Any = None
        self.push: Any = None
        self.metrics: Any = None
        self.context: Any = None
        self.forwarder: Any = None
        self.webhooks: Any = None
        from mxproxy.events.bus import EventBus

        #: the normalised event stream (docs/events.md); listens to the MX sessions only while
        #: ``[events] enabled`` or a feature called ``events.require()`` (SSE, webhooks)
        self.events = EventBus(config.events)
        self._public: _HTTPServer | None = None
        self._admin: _HTTPServer | None = None
        self._stopped = asyncio.Event()
        self._stopping = False

    @property
    def public_port(self) -> int:
        assert self._public is not None, "server not started"
        return self._public.port

    @property
    def admin_port(self) -> int | None:
        return self._admin.port if self._admin is not None else None

    @property
    def public_url(self) -> str:
        host = self.public_listen.host
        if host in (ALL_INTERFACES, "::"):
            host = LOOPBACK
        return Listen(host, self.public_port).url()

    @property
    def admin_url(self) -> str | None:
        if self._admin is None or self.admin_listen is None:
            return None
        return Listen(self.admin_listen.host, self._admin.port).url()

    def start_line(self) -> str:
        """What an operator checks first: where it listens (the bound addresses), which config
        file and which store (never a password)."""
        from mxproxy.store import describe_store

        parts = [f"public API {self._public.bound_url() if self._public else self.public_url}"]
        if self._admin is not None:
            parts.append(f"admin API {self._admin.bound_url()}")
        source = self.config.source
        return (", ".join(parts) + f"; config {source if source else '(none)'}"
                + f"; store {describe_store(self.db, self.config.base_dir)}")

    async def start(self) -> None:
        """Open the store, load keys, resume sessions, then listen. Cleans up after a failure."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        from mxproxy.api.app import create_app
        from mxproxy.api.context import ApiContext
        from mxproxy.auth.keyring import KeyRing
        from mxproxy.auth.signin_limits import SignInLimiter
        from mxproxy.auth.tokens import TokenService
        from mxproxy.connectors.registry import create_connector
        from mxproxy.metrics import Metrics
        from mxproxy.provisioning import create_provisioner
        from mxproxy.sessions import SessionManager
        from mxproxy.store import create_store
        from mxproxy.upgrade.differences import warn_original_differences
        from mxproxy.upgrade.takeover import take_over_bolt_store

        config = self.config
        # Listen first (uvicorn accepts only once started): a busy port fails before any MX login.
        self._public = _HTTPServer("public API", self.public_listen, self.graceful_seconds, config.server)
        if self.admin_listen is not None:
            self._admin = _HTTPServer("admin API", self.admin_listen, self.graceful_seconds, config.server)
        warn_original_differences(config)
        # MX Proxy 2.3's bbolt file where the SQLite store should be: import it beside, use that
        self.db = await take_over_bolt_store(self.db, config)
        self.store = create_store(self.db, config.server.store_key, base_dir=config.base_dir)
        await self.store.open()
        await self.store.claim_exclusive_use()  # SQLite: one process per file
        self.keyring = KeyRing(self.store, config.jwt)
        await self.keyring.load()
        self.tokens = TokenService(self.keyring, config.jwt)
        if config.azure.enabled:
            from mxproxy.auth.azure import AzureADValidator

            self.azure = AzureADValidator(config.azure)
        self.provisioner = create_provisioner(config)
        self.connector = create_connector(config.mx)
        use_store = getattr(self.connector, "use_store", None)  # [mx] tlsTrustOnFirstUse keeps pins there
        if use_store is not None:
            use_store(self.store)
        self.metrics = Metrics()
        ownership = self._ownership()
        self.sessions = SessionManager(self.connector, self.store, config, ownership=ownership)
        self.metrics.watch_sessions(self.sessions)
        self.events.bind(self.sessions)
        self.metrics.watch_events(self.events)
        if ownership is not None:
            set_instance(ownership.id)  # the "instance" field of JSON log lines
            from mxproxy.api.forwarding import Forwarder, PeerAuth, cluster_key

            self.metrics.watch_cluster(ownership)
            # the owner answers within its longest MX round (a sign-in: connect + login + monitor);
            # a paused owner must not hold the client longer than that
            answer_within = config.mx.connect_timeout + 2 * config.mx.response_timeout + 5.0
            self.forwarder = Forwarder(PeerAuth(cluster_key(config.server.store_key or ""), ownership.id),
                                       self.metrics, read_timeout=answer_within)
        self.push = await self._start_push()
        self.webhooks = await self._start_webhooks(ownership)
        await self.sessions.start()

        if config.signin.enabled:
            self.signin_limits = SignInLimiter(config.signin)
        self.context = ApiContext(
            config=config, tokens=self.tokens, azure=self.azure, provisioner=self.provisioner,
            sessions=self.sessions, store=self.store,
            push_topics=self.push_topics if self.push_topics is not None else _push_topics(config, self.push),
            metrics=self.metrics, signin_limits=self.signin_limits, forwarder=self.forwarder,
            events=self.events,
        )
        public_app = create_app(self.context)
        if self.context.streams is not None:  # [sse] enabled
            self.metrics.watch_streams(self.context.streams)
        await self._public.start(public_app)
        if self._admin is not None:
            admin_app = self._admin_app()
            if admin_app is None:
                self._admin.close()
                self._admin = None
            else:
                await self._admin.start(admin_app)
        freeze_startup_heap()

    def _ownership(self) -> Any:
        """Cluster mode when the store is shared (PostgreSQL): this instance's membership."""
        if not getattr(self.store, "shared", False):
            return None
        from mxproxy.push.dispatcher import DUPLICATE_WINDOW
        from mxproxy.sessions.ownership import ClusterOptions, Ownership, generated_instance_id

        cluster = self.config.cluster
        return Ownership(self.store, ClusterOptions(
            instance_id=cluster.instance_id or generated_instance_id(),
            url=self.advertised_url(),
            lease_ttl=cluster.lease_ttl,
            claim_window=DUPLICATE_WINDOW,
        ))

    def advertised_url(self) -> str:
        """Where peers reach this instance's public API: ``[cluster] advertise``, else the bind
        address when it is a specific one."""
        if self.config.cluster.advertise:
            return self.config.cluster.advertise
        assert self._public is not None
        return Listen(self.public_listen.host, self._public.port).url()

    def _admin_app(self) -> Any:
        try:
            from admin.app import create_admin_app  # type: ignore[import-not-found]
        except ImportError as exc:
            log.warning("admin API not available (%s); serving the public API only", exc)
            return None
        bind_host = self.admin_listen.host if self.admin_listen is not None else None
        return create_admin_app(self.context, push=self.push, bind_host=bind_host, webhooks=self.webhooks)

    async def _start_webhooks(self, ownership: Any) -> Any:
        """``[webhooks] enabled``: the outbox writer on the event bus and the delivery worker,
        started before the sessions so the first events of resumed sessions are kept."""
        if not self.config.webhooks.enabled:
            return None
        from mxproxy.webhooks.service import WebhookService

        service = WebhookService(self.config.webhooks, self.store, bus=self.events,
                                 metrics=self.metrics, instance_id=ownership.id if ownership is not None else None)
        await service.start()
        return service

    async def _start_push(self) -> Any:
        """Wire the push dispatcher to session events when the push package provides one."""
        try:
            from mxproxy.push.dispatcher import create_dispatcher  # type: ignore[import-not-found]
        except ImportError:
            log.info("push dispatcher not available; MX events will not be pushed")
            return None
        dispatcher = create_dispatcher(self.config, self.store, self.sessions, metrics=self.metrics)
        start = getattr(dispatcher, "start", None)
        if start is not None:
            await start()
        return dispatcher

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    def force_stop(self) -> None:
        for server in (self._public, self._admin):
            if server is not None:
                server.force_stop()

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (bounded), log out of every MX, close."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        try:
            await self._hand_over()
            await self._end_streams()
            servers = [s for s in (self._public, self._admin) if s is not None]
            for server in servers:
                server.request_stop()
            await asyncio.gather(*(s.wait() for s in servers), return_exceptions=True)
            await self._close_parts()
        finally:
            gc.unfreeze()  # a stopped server's objects may be collected again (tests run many)
            self._stopped.set()

    async def _hand_over(self) -> None:
        """Cluster: give this instance's users to the others while the API still forwards."""
        hand_over = getattr(self.sessions, "hand_over", None)
        if hand_over is None:
            return
        try:
            await asyncio.wait_for(hand_over(), SESSIONS_STOP_SECONDS)
        except asyncio.TimeoutError:
            log.error("cluster handover did not finish within %.0fs", SESSIONS_STOP_SECONDS)
        except Exception:
            log.exception("cluster handover failed")

    async def _end_streams(self) -> None:
        """``GET /events``: every stream served here writes ``event: end`` (``shutdown``; after a
        cluster handover the bus already said ``moved``) and every relayed one ends, before the
        servers wait for in-flight requests: an open stream would hold the shutdown for its whole
        graceful period."""
        streams = self.context.streams if self.context is not None else None
        if streams is None:
            return
        streams.stop()
        if self.forwarder is not None:
            await self.forwarder.close_streams()
        await streams.drain(STREAMS_END_SECONDS)

    async def _close_parts(self) -> None:
        if self.sessions is not None:
            try:
                await asyncio.wait_for(self.sessions.stop(), SESSIONS_STOP_SECONDS)
            except asyncio.TimeoutError:
                log.error("MX sessions did not log out within %.0fs; closing anyway", SESSIONS_STOP_SECONDS)
            except Exception:
                log.exception("stopping MX sessions failed")
            self.sessions = None
        self.events.close()  # whatever is still open: "shutdown"
        for name in ("webhooks", "push", "forwarder", "provisioner", "azure", "signin_limits", "connector"):
            part = getattr(self, name)
            closer = None
            if part is not None:
                closer = getattr(part, "aclose", None) or getattr(part, "stop", None)
            if closer is not None:
                try:
                    await closer()
                except Exception:
                    log.exception("closing %s failed", name)
            setattr(self, name, None)
        if self.store is not None:
            try:
                await self.store.close()
            except Exception:
                log.exception("closing the store failed")
            self.store = None


async def serve(server: ProxyServer) -> int:
    """Run until SIGTERM or SIGINT, then shut down gracefully; a second signal forces it."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal(sig: signal.Signals) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.info("received %s, shutting down", sig.name)
            stop.set()
        else:
            log.warning("received %s again, forcing shutdown", sig.name)
            server.force_stop()

    log.info("running on %s", runtime.describe(loop, runtime.http_protocol()))
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
    try:
        await server.start()
        log.info("mxproxy ready: %s", server.start_line())
        await stop.wait()
    finally:
        await server.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)
    log.info("mxproxy stopped")
    return EXIT_OK


def apply_overrides(config: Config, port: str | None, admin: str | None, db: str | None) -> Config:
    """CLI flags and PORT/ADMIN/DB env (already folded into the args) win over ``[server]``."""
    server = config.server
    if port:
        server = replace(server, port=str(port))
    if admin is not None:
        server = replace(server, admin=str(admin))
    if db:
        # a path given on the command line or in DB is relative to the working directory
        if "://" not in db and not Path(db).expanduser().is_absolute():
            db = str(Path.cwd() / db)
        server = replace(server, db=db)
    return replace(config, server=server)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``mxproxy serve``; returns the process exit code."""
    try:
        config = apply_overrides(load_config(args.config), getattr(args, "port", None),
                                 getattr(args, "admin", None), getattr(args, "db", None))
        server = ProxyServer(config)
    except ConfigError as exc:
        print(f"mxproxy: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(config)
    try:
        return runtime.run(serve(server))
    except ConfigError as exc:
        log.error("config error: %s", exc)
        return EXIT_CONFIG
    except (OSError, StoreError) as exc:  # expected: port busy, store unreachable, wrong key, ...
        log.error("startup failed: %s", exc)
        log.debug("startup failure traceback", exc_info=True)
        return EXIT_STARTUP_FAILED
    except KeyboardInterrupt:  # a signal before the handlers were installed
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the process must exit with a message, not a trace only
        log.exception("mxproxy failed: %s", exc)
        return EXIT_STARTUP_FAILED


__all__ = [
    "Listen", "ListenError", "ProxyServer", "RedactingFilter", "admin_listen", "apply_overrides",
    "configure_logging", "parse_listen", "redact", "run", "serve",
]
