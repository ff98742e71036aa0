"""``ZultysConnector``: opens CSTA-over-TLS sessions to a Zultys MX (spec §1–§2)."""

from __future__ import annotations

import logging
import ssl
from typing import TYPE_CHECKING, ClassVar, Mapping

from mxproxy.config import MXConfig
from mxproxy.connectors import base
from mxproxy.connectors.errors import MXError
from mxproxy.connectors.zultys.client import open_tls
from mxproxy.connectors.zultys.session import ZultysSession
from mxproxy.connectors.zultys.tls import client_context, normalize_fingerprint, verifies
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
    }

    def __init__(self, config: MXConfig) -> None:
        self.config = config
        self._ssl: ssl.SSLContext | None = None
        self._pin = normalize_fingerprint(config.cert_fingerprint) if config.cert_fingerprint else None
        self._warned = False
        #: trust on first use and the fingerprint log line; ``use_store`` hands it the store
        self.certificates = CertificateCheck(config.tls_trust_on_first_use, pinned=bool(self._pin))
        self.address_book_events: bool = self.option(config, "addressBookEvents")

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
        reader, writer = await open_tls(account.host, account.port, self._context(),
                                        timeout=self.config.connect_timeout, pin=self._pin)
        fingerprint = peer_fingerprint(writer.get_extra_info("ssl_object"))
        session = ZultysSession(self.config, f"{account.login}@{account.address}")
        session.attach(reader, writer)
        try:
            await self.certificates.check(account.address, fingerprint)
            await session.login(account.login, account.password)
            self.certificates.logged_in(account.address, fingerprint)
        except BaseException as exc:
            mode = "error" if isinstance(exc, MXError) else "closed"
            session.client.end(mode, "login did not succeed", graceful=False)
            raise
        if self.address_book_events:
            session.watch_address_book()
        return session
