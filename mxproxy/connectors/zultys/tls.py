"""TLS for the MX connection: the SSL context policy and certificate pinning.

Every known MX client turns verification off (spec §1.1), and real MX systems ship self-signed
certificates, so "off" stays the default for compatibility, but it is loud about it (spec §9.21):
the connector logs one warning. Two stronger options exist:

* ``ca_file``: the chain must verify against that file, and the host name / IP must match.
* ``cert_fingerprint``: the SHA-256 of the server's DER certificate must equal the pin; this
  works with self-signed certificates and is checked after the handshake.

``tls_verify = true`` without a CA file verifies against the system trust store.

Session resumption (``SessionCache``): the connector offers the last TLS session of an MX address
on the next connection to that same address, so the handshake skips the certificate, its
signature check and the full key exchange messages — most of a login's cost on a restart that
logs thousands of users in. It never replaces a check: a session is kept only after its
connection passed every one (chain and host name, pin, trust on first use) and logged in, the
peer certificate of a resumed connection is the one checked then (the pin is compared again),
and an address whose certificate check fails loses its session. A server that does not resume
simply makes a full handshake.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
import time

from mxproxy.config import MXConfig
from mxproxy.connectors.errors import MXTLSError

__all__ = ["client_context", "verifies", "normalize_fingerprint", "check_pin", "der_fingerprint", "SessionCache"]


def verifies(config: MXConfig) -> bool:
    """True when the peer is authenticated somehow (chain verification or a pin)."""
    return bool(config.tls_verify or config.ca_file or config.cert_fingerprint or config.tls_trust_on_first_use)


def client_context(config: MXConfig) -> ssl.SSLContext:
    """The client context for ``config``; raises MXTLSError when the CA file cannot be loaded."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.ca_file:
        try:
            ctx.load_verify_locations(cafile=config.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise MXTLSError(f"cannot load mx.caFile {config.ca_file!r}: {exc}") from None
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif config.tls_verify:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def normalize_fingerprint(value: str) -> str:
    """``AB:CD:…`` or ``abcd…`` → 64 lower-case hex digits (MXTLSError otherwise)."""
    digits = value.replace(":", "").replace(" ", "").lower()
    if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
        raise MXTLSError("certificate fingerprint must be 64 hex digits (SHA-256)")
    return digits


def der_fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def check_pin(ssl_object: ssl.SSLObject | ssl.SSLSocket | None, pin: str) -> None:
    """Compare the peer certificate's DER SHA-256 with ``pin`` (constant time)."""
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        raise MXTLSError("the MX presented no certificate to pin against")
    actual = der_fingerprint(der)
    if not hmac.compare_digest(actual, normalize_fingerprint(pin)):
        raise MXTLSError(f"MX certificate fingerprint mismatch (got sha256 {actual})")


class SessionCache:
    """The last resumable TLS session of each MX address (host, port) one connector talks to.

    Keyed by the exact address connected to (also the name checked and sent as SNI), never shared
    between addresses or connectors (a session belongs to its ``SSLContext``). Every connection to
    the address offers the same session concurrently (OpenSSL servers accept a TLS 1.3 ticket more
    than once); one that is declined makes a full handshake, whose new session is kept (an MX that
    restarted has new ticket keys). An address that declined its newest session ``DECLINES`` times
    in a row is not offered any more (offering costs a copy of the session). Bounded."""

    LIMIT = 1024
    DECLINES = 3

    __slots__ = ("_sessions", "_declined", "offered", "resumed")

    def __init__(self) -> None:
        self._sessions: dict[tuple[str, int], ssl.SSLSession] = {}
        self._declined: dict[tuple[str, int], int] = {}  # newest session declined n times in a row
        self.offered = 0  #: connections that offered a kept session
        self.resumed = 0  #: ... and that the server resumed

    def get(self, host: str, port: int) -> ssl.SSLSession | None:
        """The session to offer to ``host:port``, None when there is none or it expired."""
        session = self._sessions.get((host, port))
        if session is not None and session.time + session.timeout < time.time():
            del self._sessions[(host, port)]
            return None
        return session

    def keep(self, host: str, port: int, ssl_object: ssl.SSLObject | None,
             offered: ssl.SSLSession | None) -> None:
        """After a connection to ``host:port`` that offered ``offered`` passed every check and
        logged in: count whether it resumed; take its session when there is none to offer yet,
        the offered one was declined, or half its lifetime is gone. Only then: reading a session
        from Python copies it (a DER round trip that parses the certificate again), as costly
        as the part of the handshake resumption saves."""
        if ssl_object is None:
            return
        key = (host, port)
        kept = self._sessions.get(key)
        fresh = kept is not None and time.time() < kept.time + kept.timeout / 2
        if offered is None:
            if fresh:
                return  # a concurrent connection kept one already
        else:
            self.offered += 1
            if ssl_object.session_reused:
                self.resumed += 1
                self._declined.pop(key, None)
                if fresh:
                    return  # still good: every connection may offer it
            elif kept is offered:  # the newest one was declined, not a stale one
                self._declined[key] = declined = self._declined.get(key, 0) + 1
                if declined >= self.DECLINES:
                    del self._sessions[key]
                    return
        if self._declined.get(key, 0) >= self.DECLINES:
            return
        session = ssl_object.session
        if session is None or not (session.has_ticket or (session.id and ssl_object.version() != "TLSv1.3")):
            self._sessions.pop(key, None)  # nothing to resume: stop offering the old one
            return
        if kept is None and len(self._sessions) >= self.LIMIT:
            del self._sessions[next(iter(self._sessions))]
            if len(self._declined) >= self.LIMIT:
                self._declined.clear()
        self._sessions[key] = session

    def forget(self, host: str, port: int) -> None:
        """The address failed a certificate check: nothing of it is resumed any more."""
        self._sessions.pop((host, port), None)

    def __len__(self) -> int:
        return len(self._sessions)
