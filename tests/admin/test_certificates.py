"""``/mx/certificates``: list the MX certificates trusted on first use, forget one or all."""

from __future__ import annotations

import pytest

from mxproxy.config import ConfigError, parse_config
from tests.admin.conftest import AdminHarness

A, B = "a" * 64, "b" * 64


async def test_lists_and_forgets_trusted_certificates(admin: AdminHarness) -> None:
    store = admin.ctx.store
    await store.trust_mx_certificate("10.0.0.1:7778", A)
    await store.trust_mx_certificate("10.0.0.2:7778", B)
    r = await admin.client.get("/mx/certificates")
    assert (r.status_code, r.json()) == (200, {"certificates": {"10.0.0.1:7778": A, "10.0.0.2:7778": B}})
    r = await admin.client.delete("/mx/certificates", params={"address": "10.0.0.1:7778"})
    assert (r.status_code, r.json()) == (200, {"forgotten": 1})
    r = await admin.client.delete("/mx/certificates", params={"address": "10.0.0.1:7778"})
    assert r.status_code == 404 and r.json() == {"error": "no certificate trusted for 10.0.0.1:7778"}
    assert (await admin.client.delete("/mx/certificates")).json() == {"forgotten": 1}
    assert (await admin.client.get("/mx/certificates")).json() == {"certificates": {}}


async def test_a_cross_site_reset_is_refused(admin: AdminHarness) -> None:
    await admin.ctx.store.trust_mx_certificate("10.0.0.1:7778", A)
    r = await admin.client.delete("/mx/certificates", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    assert await admin.ctx.store.mx_certificates() == {"10.0.0.1:7778": A}


def test_trust_on_first_use_is_read_and_conflicts_with_a_pin() -> None:
    base = {"apps": {"a": "b"}}
    assert parse_config({**base, "mx": {"tlsTrustOnFirstUse": True}}).mx.tls_trust_on_first_use
    assert not parse_config(base).mx.tls_trust_on_first_use
    with pytest.raises(ConfigError, match="mx.tlsTrustOnFirstUse: not with mx.certFingerprint"):
        parse_config({**base, "mx": {"tlsTrustOnFirstUse": True, "certFingerprint": A}})
