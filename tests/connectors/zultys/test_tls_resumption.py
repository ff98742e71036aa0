"""TLS session resumption toward the MX (``tls.SessionCache``), observed on both ends: the
connector's session says whether its handshake resumed, the simulator's says whether the server
resumed it (no certificate sent). A server that declines makes a full handshake, and no check
(pin, chain) is ever skipped by a resumed session."""

from __future__ import annotations

import dataclasses

import pytest

from mxproxy.config import MXConfig
from mxproxy.connectors.base import MXAccount
from mxproxy.connectors.errors import MXTLSError
from mxproxy.connectors.zultys import ZultysConnector
from mxproxy.connectors.zultys.tls import SessionCache
from mxproxy.simulator import Quirks
from tests.connectors.zultys.conftest import FAST, small_world


async def logins(connector: ZultysConnector, port: int, n: int, login: str = "alice") -> list[bool]:
    """``n`` logins one after the other (each logged out again); whether each one resumed."""
    resumed = []
    for _ in range(n):
        session = await connector.login(MXAccount("127.0.0.1", port, login, f"{login}-pw"))
        assert session.is_alive and session.login_info.extension
        resumed.append(session.tls_resumed)
        await session.logout()
    return resumed


def server_side(sim) -> list[bool]:  # type: ignore[no-untyped-def]
    return [s.tls_resumed for s in sim.sessions() if s.logged_in]


@pytest.mark.parametrize("version", ["1.3", "1.2"])
async def test_the_second_login_to_an_mx_resumes_the_tls_session_of_the_first(start_simulator, version) -> None:
    sim = await start_simulator(small_world(), quirks=Quirks(tls_version=version))
    connector = ZultysConnector(FAST)
    assert await logins(connector, sim.port, 1) == [False]
    assert await logins(connector, sim.port, 2, login="bob") == [True, True]  # any user of that MX
    assert server_side(sim) == [False, True, True]
    assert (connector.tls_sessions.offered, connector.tls_sessions.resumed) == (2, 2)
    await connector.aclose()


@pytest.mark.parametrize("version", ["1.3", "1.2"])
async def test_an_mx_that_never_resumes_gets_full_handshakes_and_is_soon_not_offered_sessions(
        start_simulator, version) -> None:
    sim = await start_simulator(small_world(), quirks=Quirks(tls_version=version, tls_resumption=False))
    connector = ZultysConnector(FAST)
    assert await logins(connector, sim.port, SessionCache.DECLINES + 3) == [False] * (SessionCache.DECLINES + 3)
    assert not any(server_side(sim))
    # TLS 1.3 without tickets: nothing to offer at all; TLS 1.2 session ids: declined, then not offered
    assert connector.tls_sessions.offered == (0 if version == "1.3" else SessionCache.DECLINES)
    assert connector.tls_sessions.resumed == 0
    await connector.aclose()


async def test_after_the_mx_restarts_its_stale_session_falls_back_to_a_full_handshake_then_resumes_again(
        start_simulator) -> None:
    sim = await start_simulator(small_world())
    connector = ZultysConnector(FAST)
    assert await logins(connector, sim.port, 2) == [False, True]
    await sim.stop()
    await sim.start()  # same address, new ticket keys (and certificate): the kept session is unknown there
    assert await logins(connector, sim.port, 2) == [False, True]
    assert (connector.tls_sessions.offered, connector.tls_sessions.resumed) == (3, 2)
    await connector.aclose()


async def test_a_resumed_session_never_stands_in_for_the_pinned_certificate(start_simulator) -> None:
    sim = await start_simulator(small_world())
    connector = ZultysConnector(dataclasses.replace(FAST, cert_fingerprint=sim.cert_fingerprint))
    assert await logins(connector, sim.port, 2) == [False, True]  # the pin is compared on the resumed one too
    before = len(sim.sessions())
    await sim.stop()
    await sim.start()  # another certificate on the same address
    with pytest.raises(MXTLSError, match="fingerprint mismatch"):
        await logins(connector, sim.port, 1)
    assert len(connector.tls_sessions) == 0  # the address failed its check: nothing of it is resumed
    assert not [s for s in sim.sessions()[before:] if s.commands]  # nothing was sent to the other certificate
    await connector.aclose()


async def test_a_session_is_only_offered_to_the_address_it_came_from(start_simulator) -> None:
    first = await start_simulator(small_world())
    second = await start_simulator(small_world())
    connector = ZultysConnector(FAST)
    assert await logins(connector, first.port, 1) == [False]
    assert await logins(connector, second.port, 1) == [False]
    assert connector.tls_sessions.offered == 0
    assert len(connector.tls_sessions) == 2
    await connector.aclose()


async def test_a_session_verified_against_the_ca_file_resumes_and_the_chain_still_decides(
        start_simulator, tmp_path) -> None:
    sim = await start_simulator(small_world())
    other = await start_simulator(small_world())
    ca = tmp_path / "mx.pem"
    ca.write_bytes(sim.cert_pem)
    connector = ZultysConnector(dataclasses.replace(FAST, ca_file=str(ca)))
    assert await logins(connector, sim.port, 2) == [False, True]
    with pytest.raises(MXTLSError):
        await logins(connector, other.port, 1)
    await connector.aclose()


@pytest.mark.parametrize("config", [
    dataclasses.replace(FAST, options={"tlsResumption": False}),
    dataclasses.replace(FAST, tls_trust_on_first_use=True),  # a forgotten certificate is learnt from a full handshake
], ids=["tlsResumption-off", "trust-on-first-use"])
async def test_resumption_is_off_when_switched_off_and_with_trust_on_first_use(
        start_simulator, store, config: MXConfig) -> None:
    sim = await start_simulator(small_world())
    connector = ZultysConnector(config)
    connector.use_store(store)
    assert connector.tls_sessions is None
    assert await logins(connector, sim.port, 3) == [False, False, False]
    assert not any(server_side(sim))
    await connector.aclose()
