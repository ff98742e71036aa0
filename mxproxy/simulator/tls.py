"""TLS for the simulator: a self-signed certificate when none is given (every MX client accepts
one, spec §1.1), and its fingerprint so tests can exercise certificate pinning."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["CertPair", "self_signed", "load_pair", "server_context", "fingerprint"]


@dataclass(frozen=True)
class CertPair:
    cert_pem: bytes
    key_pem: bytes = field(repr=False)


def self_signed(common_name: str = "mx-simulator", hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")) -> CertPair:
    """A fresh EC P-256 certificate valid for a year, with the loopback names as SANs."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return CertPair(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def load_pair(certfile: str | Path, keyfile: str | Path | None) -> CertPair:
    cert_pem = Path(certfile).read_bytes()
    key_pem = Path(keyfile).read_bytes() if keyfile else cert_pem
    return CertPair(cert_pem, key_pem)


def server_context(pair: CertPair, *, max_version: str = "1.3", resumption: bool = True) -> ssl.SSLContext:
    """A TLS 1.2+ server context; the PEMs go through a private temporary folder because
    ``load_cert_chain`` only reads files.

    OpenSSL lets clients resume by default (TLS 1.3 tickets, TLS 1.2 tickets and session ids from
    the context's cache). ``resumption=False`` issues no tickets; the TLS 1.2 session-id cache
    cannot be switched off from Python, so a refusing server also needs a fresh context for each
    connection (``Simulator`` does that)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if max_version == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if not resumption:
        ctx.options |= ssl.OP_NO_TICKET
        ctx.num_tickets = 0
    with tempfile.TemporaryDirectory(prefix="mxsim-tls-") as tmp:
        cert = Path(tmp) / "cert.pem"
        key = Path(tmp) / "key.pem"
        cert.write_bytes(pair.cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(pair.key_pem)
        ctx.load_cert_chain(cert, key)
    return ctx


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the DER certificate, lower-case hex (what pinning configs compare against)."""
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()
