"""The MX certificate: its fingerprint logged once with the config line that pins it, and
``[mx] tlsTrustOnFirstUse`` against the simulator's TLS — the first certificate is kept in the
store, a second certificate on the same address is refused until it is forgotten."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from mxproxy.connectors.base import MXAccount
from mxproxy.connectors.errors import MXTLSError
from mxproxy.connectors.zultys import ZultysConnector
from tests.connectors.zultys.conftest import FAST, small_world


async def login(connector: ZultysConnector, port: int):  # type: ignore[no-untyped-def]
    session = await connector.login(MXAccount("127.0.0.1", port, "alice", "alice-pw"))
    await session.close()


async def test_the_first_login_logs_the_fingerprint_with_the_pinning_line_once(
        start_simulator, caplog: pytest.LogCaptureFixture) -> None:
    sim = await start_simulator(small_world())
    connector = ZultysConnector(FAST)
    with caplog.at_level(logging.INFO, logger="mxproxy.connectors.zultys"):
        await login(connector, sim.port)
        await login(connector, sim.port)
    lines = [r.getMessage() for r in caplog.records if "certFingerprint =" in r.getMessage()]
    assert lines == [f'MX 127.0.0.1:{sim.port} certificate sha256 {sim.cert_fingerprint} (not verified); '
                     f'to pin it, set in [mx]: certFingerprint = "{sim.cert_fingerprint}"']
    await connector.aclose()


async def test_trust_on_first_use_keeps_the_first_certificate_and_refuses_a_second(start_simulator, store) -> None:
    sim = await start_simulator(small_world())
    connector = ZultysConnector(dataclasses.replace(FAST, tls_trust_on_first_use=True))
    connector.use_store(store)
    first = sim.cert_fingerprint
    await login(connector, sim.port)
    address = f"127.0.0.1:{sim.port}"
    assert await store.mx_certificates() == {address: first}

    await sim.stop()
    await sim.start()  # same address, a freshly generated certificate
    second = sim.cert_fingerprint
    assert second != first
    with pytest.raises(MXTLSError, match=f"certificate changed: sha256 {second}, trusted sha256 {first}"):
        await login(connector, sim.port)
    assert not [s for s in sim.sessions() if s.logged_in and s.login == "alice" and s.active]
    assert await store.mx_certificates() == {address: first}

    assert await store.forget_mx_certificates(address) == 1  # what the admin route does
    await login(connector, sim.port)
    assert await store.mx_certificates() == {address: second}
    await connector.aclose()


async def test_trust_on_first_use_without_a_store_refuses_rather_than_trusting_blindly(start_simulator) -> None:
    sim = await start_simulator(small_world())
    connector = ZultysConnector(dataclasses.replace(FAST, tls_trust_on_first_use=True))
    with pytest.raises(MXTLSError, match="needs the store"):
        await login(connector, sim.port)
    await connector.aclose()
