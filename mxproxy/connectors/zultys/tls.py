"""TLS for the MX connection: the SSL context policy and certificate pinning.

Every known MX client turns verification off (spec §1.1), and real MX systems ship self-signed
certificates, so "off" stays the default for compatibility, but it is loud about it (spec §9.21):
the connector logs one warning. Two stronger options exist:

* ``ca_file``: the chain must verify against that file, and the host name / IP must match.
* ``cert_fingerprint``: the SHA-256 of the server's DER certificate must equal the pin; this
  works with self-signed certificates and is checked after the handshake.

``tls_verify = true`` without a CA file verifies against the system trust store.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl

from mxproxy.config import MXConfig
from mxproxy.connectors.errors import MXTLSError

__all__ = ["client_context", "verifies", "normalize_fingerprint", "check_pin", "der_fingerprint"]


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
