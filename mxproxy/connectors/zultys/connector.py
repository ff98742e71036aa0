"""``ZultysConnector``: opens CSTA-over-TLS sessions to a Zultys MX (spec §1–§2)."""

from __future__ import annotations

import logging
import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Mapping

from mxproxy.config import MXConfig
from mxproxy.connectors import base
from mxproxy.connectors.errors import MXError, MXTLSError, MXUnsupported
from mxproxy.connectors.zultys.client import open_tls
from mxproxy.connectors.zultys.session import ZultysSession
from mxproxy.connectors.zultys.tls import SessionCache, client_context, normalize_fingerprint, verifies
from mxproxy.connectors.zultys.trace import TraceWriter
from mxproxy.connectors.zultys.trust import CertificateCheck, peer_fingerprint

if TYPE_CHECKING:
    from mxproxy.store.base import Store

log = logging.getLogger("mxproxy.connectors.zultys")

__all__ = ["ZultysConnector"]


class ZultysConnector(base.Connector):
    name: ClassVar[str] = "zultys"
    capabilities: ClassVar[frozenset[base.Capability]] = base.ALL_CAPABILITIES
    options: ClassVar[Mapping[str, base.Option]] = {
        # MonitorStartAb after each login, so address-book changes drop the cached directory at
        # once instead of after ``directoryTTL``
        "addressBookEvents": base.Option("boolean", True),
        # where CSTA traces go (``trace_user``, admin ``POST /trace``); unset: tracing is off
        "traceDir": base.Option("path", None),
        # offer the last TLS session of an MX address on the next connection (``tls.SessionCache``):
        # a resumed handshake skips the certificate and its checks. Not with tlsTrustOnFirstUse,
        # where the certificate the MX presents now is what must be learnt after a forget.
        "tlsResumption": base.Option("boolean", True),
    }

    def __init__(self, config: MXConfig) -> None:
        self.config = config
        self._ssl: ssl.SSLContext | None = None
        self._pin = normalize_fingerprint(config.cert_fingerprint) if config.cert_fingerprint else None
        self._warned = False
        #: trust on first use and the fingerprint log line; ``use_store`` hands it the store
        self.certificates = CertificateCheck(config.tls_trust_on_first_use, pinned=bool(self._pin))
        self.address_book_events: bool = self.option(config, "addressBookEvents")
        trace_dir = self.option(config, "traceDir")
        self.trace_dir: Path | None = Path(trace_dir) if trace_dir else None
        self._trace_plans: dict[str, base.TraceRequest] = {}  # MX login (lower case) -> plan
        #: TLS sessions to resume, per MX address (None: ``tlsResumption`` off, or trust on first use)
        self.tls_sessions: SessionCache | None = (
            SessionCache() if self.option(config, "tlsResumption") and not config.tls_trust_on_first_use else None)

    def trace_user(self, login: str, seconds: float, pseudonymise: bool = False) -> base.TraceRequest:
        """Trace every CSTA session ``login`` logs in within ``seconds`` (0 stops), from its first
        frame; the caller also hands the plan to the user's live session (``start_trace``)."""
        if self.trace_dir is None:
            raise MXUnsupported("CSTA tracing (set [mx] traceDir)")
        key = login.strip().lower()
        plan = base.TraceRequest(self.trace_dir, time.time() + max(0.0, seconds), pseudonymise)
        if seconds <= 0:
            self._trace_plans.pop(key, None)
        else:
            self._trace_plans[key] = plan
        return plan

    def _trace_for(self, login: str) -> TraceWriter | None:
        plan = self._trace_plans.get(login.strip().lower())
        if plan is None:
            return None
        if not plan.active:
            del self._trace_plans[login.strip().lower()]
            return None
        try:
            return TraceWriter(plan, login)
        except OSError as exc:
            log.warning("cannot start the CSTA trace of %s in %s: %s", login, plan.directory, exc)
            return None

    def _context(self) -> ssl.SSLContext:
        """Built on first use (loading a CA file is I/O); the no-verification warning goes out once."""
        if self._ssl is None:
            self._ssl = client_context(self.config)
        if not self._warned and not verifies(self.config):
            self._warned = True
            log.warning("MX TLS certificates are NOT verified (mx.tlsVerify is off, no mx.caFile or "
                        "mx.certFingerprint): anyone on the path to the MX can intercept CSTA sessions")
        return self._ssl

    def use_store(self, store: "Store") -> None:
        """Where ``[mx] tlsTrustOnFirstUse`` keeps the trusted fingerprints (shared by instances)."""
        self.certificates.store = store

    async def login(self, account: base.MXAccount) -> ZultysSession:
        """Connect, then log in (hashed password, clear-text retry on Code 2/4) and, unless
        ``[mx] addressBookEvents`` is off, ask for address-book change events. Connect timeouts
        and login reply timeouts raise MXTimeout; refused/unreachable MXConnectionFailed; TLS and
        pinning failures MXTLSError; a rejected login MXLoginFailed."""
        sessions = self.tls_sessions
        offer = sessions.get(account.host, account.port) if sessions is not None else None
        try:
            reader, writer = await open_tls(account.host, account.port, self._context(),
                                            timeout=self.config.connect_timeout, pin=self._pin, session=offer)
        except MXTLSError:
            if sessions is not None:
                sessions.forget(account.host, account.port)
            raise
        ssl_object = writer.get_extra_info("ssl_object")
        fingerprint = peer_fingerprint(ssl_object)
        session = ZultysSession(self.config, f"{account.login}@{account.address}")
        client = session.attach(reader, writer)
        client.trace = self._trace_for(account.login) if self._trace_plans else None
        try:
            await self.certificates.check(account.address, fingerprint)
            await session.login(account.login, account.password)
            self.certificates.logged_in(account.address, fingerprint)
        except BaseException as exc:
            mode = "error" if isinstance(exc, MXError) else "closed"
            session.client.end(mode, "login did not succeed", graceful=False)
            if isinstance(exc, MXTLSError) and sessions is not None:
                sessions.forget(account.host, account.port)
            raise
        if sessions is not None:  # read now: a TLS 1.3 ticket arrives after the handshake
            sessions.keep(account.host, account.port, ssl_object, offer)
        session.tls_resumed = bool(ssl_object is not None and ssl_object.session_reused)
        if self.address_book_events:
            session.watch_address_book()
        return session
