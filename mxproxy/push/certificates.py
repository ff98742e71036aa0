"""APNs credentials: PKCS#12 certificates (the original's ``[voip.apn]``) and .p8 signing keys.

A certificate's topics are read the way the original read them (spec §7.6): the bundle id is the
subject's UID; Apple's *development* extension makes it usable on the sandbox gateway, the
*production* extension on the production gateway, both when both are present. A certificate with
the multi-topic extension is rejected as a whole (the original could half-register it, §9.31).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)

OID_DEVELOPMENT = x509.ObjectIdentifier("1.2.840.113635.100.6.3.1")
OID_PRODUCTION = x509.ObjectIdentifier("1.2.840.113635.100.6.3.2")
OID_MULTI_TOPIC = x509.ObjectIdentifier("1.2.840.113635.100.6.3.6")
EXPIRY_WARNING = dt.timedelta(days=30)


class CredentialError(ValueError):
    """A certificate or key cannot be used; the message names the file (never the password)."""


@dataclass(frozen=True)
class ApnsCertificate:
    """A loaded APNs client certificate. ``pem`` holds the certificate chain and the clear
    private key, for the TLS layer only."""

    path: str
    bundle_id: str
    sandbox: bool  # usable on the development gateway
    production: bool  # usable on the production gateway
    not_valid_after: dt.datetime
    subject: str
    pem: bytes = field(repr=False)

    @property
    def topics(self) -> frozenset[tuple[str, bool]]:
        """(topic, sandbox) pairs this certificate can push to."""
        pairs = set()
        if self.production:
            pairs.add((self.bundle_id, False))
        if self.sandbox:
            pairs.add((self.bundle_id, True))
        return frozenset(pairs)

    def expires_in(self, now: dt.datetime | None = None) -> dt.timedelta:
        return self.not_valid_after - (now or dt.datetime.now(dt.timezone.utc))


@dataclass(frozen=True)
class ApnsSigningKey:
    """A .p8 token-auth key: one key pushes to every listed bundle on both gateways."""

    path: str
    key_id: str
    team_id: str
    topics: tuple[str, ...]
    pem: str = field(repr=False)


def load_p12(path: Path, password: str) -> ApnsCertificate:
    """Load a PKCS#12 APNs certificate and read its topic(s) and expiry."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CredentialError(f"{path}: cannot read certificate: {exc.strerror}") from None
    try:
        key, cert, chain = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    except ValueError:
        raise CredentialError(f"{path}: not a PKCS#12 file or wrong password") from None
    if key is None or cert is None:
        raise CredentialError(f"{path}: the PKCS#12 file must hold a certificate and its private key")
    return certificate_from(cert, key, chain or [], str(path))


def certificate_from(
    cert: x509.Certificate, key: object, chain: list[x509.Certificate], path: str
) -> ApnsCertificate:
    uids = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    if not uids or not str(uids[0].value):
        raise CredentialError(f"{path}: certificate subject has no UID (bundle id)")
    bundle_id = str(uids[0].value)
    oids = {ext.oid for ext in cert.extensions}
    if OID_MULTI_TOPIC in oids:
        raise CredentialError(f"{path}: multi-topic certificates are not supported (topic {bundle_id})")
    sandbox, production = OID_DEVELOPMENT in oids, OID_PRODUCTION in oids
    if not sandbox and not production:
        raise CredentialError(f"{path}: certificate has neither Apple's development nor production push extension")
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [cert, *chain])
    pem += key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    loaded = ApnsCertificate(
        path=path,
        bundle_id=bundle_id,
        sandbox=sandbox,
        production=production,
        not_valid_after=cert.not_valid_after_utc,
        subject=cert.subject.rfc4514_string(),
        pem=pem,
    )
    left = loaded.expires_in()
    if left <= dt.timedelta(0):
        log.error("APNs certificate %s (%s) expired on %s", path, bundle_id, loaded.not_valid_after.date())
    elif left < EXPIRY_WARNING:
        log.warning(
            "APNs certificate %s (%s) expires in %d days (%s): renew it",
            path, bundle_id, left.days, loaded.not_valid_after.date(),
        )
    return loaded


def load_p8(path: Path, key_id: str, team_id: str, topics: tuple[str, ...]) -> ApnsSigningKey:
    """Load an APNs auth key (.p8, PKCS#8 EC P-256) for token authentication."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CredentialError(f"{path}: cannot read APNs key: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        raise CredentialError(f"{path}: not an unencrypted PEM private key (.p8)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise CredentialError(f"{path}: APNs keys are EC P-256 keys")
    return ApnsSigningKey(path=str(path), key_id=key_id, team_id=team_id, topics=topics, pem=text)
