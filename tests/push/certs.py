"""Test credentials made with cryptography: a CA, a TLS server certificate for 127.0.0.1,
Apple-style push client certificates (UID subject, development/production/multi-topic
extensions) as PKCS#12, an APNs .p8 key and a Firebase service-account JSON."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

OID_DEVELOPMENT = x509.ObjectIdentifier("1.2.840.113635.100.6.3.1")
OID_PRODUCTION = x509.ObjectIdentifier("1.2.840.113635.100.6.3.2")
OID_MULTI_TOPIC = x509.ObjectIdentifier("1.2.840.113635.100.6.3.6")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class TestCA:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def write(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path


def make_ca() -> TestCA:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mxproxy test CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(days=1))
        .not_valid_after(_now() + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return TestCA(key, cert)


def make_server_cert(ca: TestCA, directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """(cert PEM path, key PEM path) of a TLS server certificate for ``host`` signed by ``ca``."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(days=1))
        .not_valid_after(_now() + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def make_push_p12(
    ca: TestCA,
    path: Path,
    bundle_id: str,
    *,
    development: bool = True,
    production: bool = True,
    multi_topic: bool = False,
    password: str = "secret",
    days: int = 365,
    uid: bool = True,
    legacy: bool = False,
) -> Path:
    """An Apple-style push client certificate in a password-protected PKCS#12 file; ``legacy``:
    encrypted the old way (3DES, SHA-1 MAC), as Keychain and MX Proxy 2.3-era tools wrote them."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attrs = []
    if uid:
        attrs.append(x509.NameAttribute(NameOID.USER_ID, bundle_id))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, f"Apple Push Services: {bundle_id}"))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(days=1))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    for oid, wanted in ((OID_DEVELOPMENT, development), (OID_PRODUCTION, production), (OID_MULTI_TOPIC, multi_topic)):
        if wanted:
            builder = builder.add_extension(x509.UnrecognizedExtension(oid, b"\x05\x00"), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    if legacy:
        encryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(2048)
            .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(hashes.SHA1())
            .build(password.encode())
        )
    else:
        encryption = (
            serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
        )
    path.write_bytes(pkcs12.serialize_key_and_certificates(bundle_id.encode(), key, cert, None, encryption))
    return path


def make_p8(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return key


def make_service_account(path: Path, token_uri: str, project_id: str = "mx-test-project") -> rsa.RSAPrivateKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": project_id,
                "private_key_id": "test-key-1",
                "private_key": pem.decode(),
                "client_email": f"push@{project_id}.iam.gserviceaccount.com",
                "client_id": "1234567890",
                "token_uri": token_uri,
            }
        )
    )
    return key
