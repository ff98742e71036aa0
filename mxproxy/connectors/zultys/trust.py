"""The MX certificate after the handshake: its fingerprint, logged once with the config line that
pins it, and ``[mx] tlsTrustOnFirstUse`` — the first certificate an MX presents is kept in the
store, a different one later is refused.

Real MX systems present self-signed certificates, so verification is off by default (spec §1.1,
§9.21). Pinning (``certFingerprint``) needs the fingerprint first; the log line gives it. Trust on
first use pins every MX automatically, in the store, so every instance sharing it trusts the same
certificate; the admin ``DELETE /mx/certificates`` forgets it after a planned certificate change.
"""

from __future__ import annotations

import hmac
import logging
import ssl
from typing import TYPE_CHECKING

from mxproxy.connectors.errors import MXTLSError
from mxproxy.connectors.zultys.tls import der_fingerprint

if TYPE_CHECKING:
    from mxproxy.store.base import Store

log = logging.getLogger("mxproxy.connectors.zultys")

__all__ = ["CertificateCheck", "peer_fingerprint"]


def peer_fingerprint(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """SHA-256 of the peer's DER certificate, 64 lower-case hex digits."""
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return der_fingerprint(der) if der else None


class CertificateCheck:
    """Per connector: trust on first use (when on) and the one-time fingerprint log line."""

    def __init__(self, trust_on_first_use: bool, pinned: bool) -> None:
        self.trust_on_first_use = trust_on_first_use
        self.pinned = pinned
        self.store: Store | None = None
        self._announced: set[str] = set()

    async def check(self, address: str, fingerprint: str | None) -> None:
        """Before the login: refuse a certificate other than the one trusted for ``address``."""
        if not self.trust_on_first_use:
            return
        if fingerprint is None:
            raise MXTLSError(f"MX {address} presented no certificate to trust")
        if self.store is None:
            raise MXTLSError("mx.tlsTrustOnFirstUse needs the store to keep fingerprints in")
        trusted = await self.store.trust_mx_certificate(address, fingerprint)
        if not hmac.compare_digest(trusted, fingerprint):
            raise MXTLSError(
                f"MX {address} certificate changed: sha256 {fingerprint}, trusted sha256 {trusted} "
                "(mx.tlsTrustOnFirstUse); if the MX's certificate was replaced on purpose, forget the old one: "
                f"curl -X DELETE 'localhost:8043/mx/certificates?address={address}'")

    def logged_in(self, address: str, fingerprint: str | None) -> None:
        """After the first successful login to ``address``: say how to pin its certificate."""
        if fingerprint is None or self.pinned or address in self._announced:
            return
        self._announced.add(address)
        how = "trusted on first use and kept in the store" if self.trust_on_first_use else "not verified"
        log.info('MX %s certificate sha256 %s (%s); to pin it, set in [mx]: certFingerprint = "%s"',
                 address, fingerprint, how, fingerprint)
