"""MX Proxy 2.3's .p12 files load as they are: legacy PKCS#12 (3DES keys, RC2-40 certificate bags,
SHA-1 MACs) as well as current ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from mxproxy.push.certificates import CredentialError, load_p12
from tests.push.certs import make_ca, make_push_p12

ORIGINALS = Path(__file__).resolve().parent.parent / "upgrade" / "fixtures"
BUNDLE = "com.example.phone"


def test_a_legacy_rc2_and_3des_p12_from_openssl_loads() -> None:
    """``openssl pkcs12 -export -legacy`` output (committed: RC2-40 certificate bag, 3DES key)."""
    cert = load_p12(ORIGINALS / "legacy-rc2.p12", "p12-secret")
    assert cert.bundle_id == BUNDLE and cert.topics == {(BUNDLE, False), (BUNDLE, True)}
    assert b"PRIVATE KEY" in cert.pem


@pytest.mark.parametrize("legacy", [True, False])
def test_3des_sha1_and_current_p12_load_alike(tmp_path: Path, legacy: bool) -> None:
    path = make_push_p12(make_ca(), tmp_path / "push.p12", BUNDLE, password="pw", legacy=legacy)
    data = path.read_bytes()
    assert pkcs12.load_pkcs12(data, b"pw").cert is not None
    assert load_p12(path, "pw").topics == {(BUNDLE, False), (BUNDLE, True)}


def test_a_wrong_password_on_a_legacy_p12_is_a_clear_error() -> None:
    with pytest.raises(CredentialError, match="not a PKCS#12 file or wrong password"):
        load_p12(ORIGINALS / "legacy-rc2.p12", "wrong")
