"""Failures: login errors, timeouts, dropped sockets, garbage, hostile XML, TLS policy, liveness,
and what the frame log may never show."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from mxproxy.connectors.base import MXAccount, SessionEnded
from mxproxy.connectors.errors import (
    MXConnectionFailed,
    MXLoginFailed,
    MXProtocolError,
    MXSessionEnded,
    MXTimeout,
    MXTLSError,
)
from mxproxy.connectors.zultys import ZultysConnector
from mxproxy.connectors.zultys.commands import password_hash
from mxproxy.simulator import Quirks
from tests.connectors.zultys.conftest import FAST, EventReader, small_world

# -- login -------------------------------------------------------------------------------------


async def test_wrong_password_is_login_failed_with_the_servers_code_and_text(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    with pytest.raises(MXLoginFailed) as err:
        await connect(sim, password="wrong")
    assert err.value.code == 2 and "password" in err.value.text.lower()
    # one hashed attempt, one clear-text retry (Code 2, apiversion 11), nothing more
    logins = [c for s in sim.sessions() for c in s.commands if c == "loginRequest"]
    assert len(logins) == 2


async def test_ldap_user_logs_in_with_the_clear_text_fallback(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    carol = await connect(sim, login="carol")
    assert carol.login_info.extension == "203"
    assert [s for s in sim.sessions() if s.login == "carol"][0].commands.count("loginRequest") == 2


async def test_no_clear_text_retry_for_old_api_versions(start_simulator, connect) -> None:
    fx = small_world()
    fx.api_version = 1
    sim = await start_simulator(fx)
    with pytest.raises(MXLoginFailed) as err:
        await connect(sim, login="carol")
    assert err.value.code == 4
    assert sum(s.commands.count("loginRequest") for s in sim.sessions()) == 1


async def test_login_reply_timeout_is_mx_timeout(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    sim.set_delay(2.0, "loginRequest")
    with pytest.raises(MXTimeout):
        await connect(sim, response_timeout=0.2)


async def test_connection_refused_is_connection_failed() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(MXConnectionFailed) as err:
        await ZultysConnector(FAST).login(MXAccount("127.0.0.1", port, "alice", "pw"))
    assert not isinstance(err.value, MXTLSError)


async def test_connect_timeout_is_mx_timeout() -> None:
    """A peer that accepts TCP but never answers the TLS handshake."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        config = FAST.__class__(**{**FAST.__dict__, "connect_timeout": 0.3})
        with pytest.raises(MXTimeout):
            await ZultysConnector(config).login(MXAccount("127.0.0.1", port, "alice", "pw"))
    finally:
        server.close()


# -- TLS -------------------------------------------------------------------------------------


async def test_pinned_fingerprint_that_matches_connects(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    pin = ":".join(sim.cert_fingerprint.upper()[i:i + 2] for i in range(0, 64, 2))
    alice = await connect(sim, cert_fingerprint=pin)
    assert alice.is_alive


async def test_wrong_pinned_fingerprint_is_a_tls_error_and_sends_nothing(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    with pytest.raises(MXTLSError):
        await connect(sim, cert_fingerprint="00" * 32)
    assert all(not s.commands for s in sim.sessions())


async def test_ca_file_verification(start_simulator, connect, tmp_path) -> None:
    sim = await start_simulator(small_world())
    other = await start_simulator(small_world())
    ca = tmp_path / "mx.pem"
    ca.write_bytes(sim.cert_pem)
    assert (await connect(sim, ca_file=str(ca))).is_alive
    with pytest.raises(MXTLSError):
        await connect(other, ca_file=str(ca))


async def test_system_trust_store_rejects_a_self_signed_mx(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    with pytest.raises(MXTLSError):
        await connect(sim, tls_verify=True)


async def test_unverified_tls_is_warned_about_once_per_connector(start_simulator, caplog) -> None:
    sim = await start_simulator(small_world())
    connector = ZultysConnector(FAST)
    with caplog.at_level(logging.WARNING, logger="mxproxy.connectors.zultys"):
        for _ in range(2):
            session = await connector.login(MXAccount("127.0.0.1", sim.port, "alice", "alice-pw"))
            await session.close()
    assert sum("NOT verified" in r.getMessage() for r in caplog.records) == 1


# -- timeouts, drops, garbage ----------------------------------------------------------------


async def test_slow_reply_is_mx_timeout_and_the_late_reply_is_ignored(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim, response_timeout=0.2)
    sim.set_delay(0.4, "GetServiceList")
    with pytest.raises(MXTimeout):
        await alice.services()
    sim.set_delay(None, "GetServiceList")
    await asyncio.sleep(0.3)  # the late reply arrives and is dropped
    assert await alice.services() == [] and alice.is_alive


async def test_dropped_socket_ends_the_session_and_fails_pending_requests(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    events = EventReader(alice)
    sim.set_delay(1.0, "GetServiceList")
    pending = asyncio.create_task(alice.services())
    await asyncio.sleep(0.1)
    await sim.drop_session("alice")
    with pytest.raises(MXSessionEnded) as err:
        await pending
    assert err.value.mode == "closed"
    ended = await events.next(SessionEnded)
    assert ended.mode == "closed" and not alice.is_alive
    with pytest.raises(MXSessionEnded):
        await alice.services()


async def test_forced_logout_fails_pending_requests_with_the_mode(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    sim.set_delay(1.0, "GetServiceList")
    pending = asyncio.create_task(alice.services())
    await asyncio.sleep(0.1)
    await sim.force_logout("alice", mode="forced")
    with pytest.raises(MXSessionEnded) as err:
        await pending
    assert err.value.forced and str(err.value) == "logout: forced"


async def test_garbage_xml_is_skipped_and_the_session_goes_on(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    await sim.send_garbage("alice", kind="xml")
    await asyncio.sleep(0.05)
    assert await alice.services() == [] and alice.is_alive


@pytest.mark.parametrize("kind", ["header", "length"])
async def test_a_broken_frame_header_ends_the_session(start_simulator, connect, kind: str) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    events = EventReader(alice)
    await sim.send_garbage("alice", kind=kind)
    await sim.set_presence(ext="202", status="Away")  # more bytes after a short garbage header
    ended = await events.next(SessionEnded)
    assert ended.mode == "error" and not alice.is_alive


async def test_entity_bomb_from_the_server_is_refused_not_expanded(scripted_mx, connect) -> None:
    entities = '<!ENTITY a0 "lol">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    bomb = f'<?xml version="1.0"?><!DOCTYPE GetServiceListResponse [{entities}]><GetServiceListResponse>' \
           '<Service><serviceName>&a9;</serviceName></Service></GetServiceListResponse>'
    calls = 0

    async def handler(conn, request) -> None:
        nonlocal calls
        if request.root.tag == "GetServiceList":
            calls += 1
            conn.send(request.invoke_id, bomb if calls == 1 else "<GetServiceListResponse></GetServiceListResponse>")
            conn.send(9999, bomb.replace("GetServiceListResponse", "DeliveredEvent"))

    mx = await scripted_mx(handler)
    alice = await connect(mx.port, response_timeout=5.0)
    with pytest.raises(MXProtocolError):
        await asyncio.wait_for(alice.services(), 2)  # fails at once, not by timeout
    assert await alice.services() == [] and alice.is_alive


# -- liveness --------------------------------------------------------------------------------


async def test_keepalive_frame_after_idle_and_probes_keep_a_healthy_session_alive(scripted_mx, connect) -> None:
    async def handler(conn, request) -> None:
        if request.root.tag == "GetServiceList":
            conn.send(request.invoke_id, "<GetServiceListResponse></GetServiceListResponse>")

    mx = await scripted_mx(handler)
    alice = await connect(mx.port, keepalive=0.1, read_deadline=0.35)
    await asyncio.sleep(1.0)  # > read_deadline: only the probe replies keep it alive
    assert alice.is_alive
    keepalives = [h for h, r in zip(mx.headers, mx.received) if r.root.tag == "keepalive"]
    assert keepalives and all(h == b"\x00\x00\x00\x150000" for h in keepalives)
    assert [r.payload for r in mx.received if r.root.tag == "keepalive"][0] == b"<keepalive />"


async def test_read_deadline_ends_a_session_whose_mx_went_silent(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim, keepalive=0.1, read_deadline=0.3)
    events = EventReader(alice)
    sim.set_drop(None)  # the MX stops answering anything (half-open connection)
    ended = await events.next(SessionEnded, timeout=3)
    assert ended.mode == "closed" and "no frame" in ended.reason


async def test_idle_simulator_session_survives_past_the_read_deadline(start_simulator, connect) -> None:
    sim = await start_simulator(small_world(), quirks=Quirks(presence_after_login=False))
    alice = await connect(sim, keepalive=0.1, read_deadline=0.3)
    await asyncio.sleep(0.8)
    assert alice.is_alive and await alice.services() == []


# -- logs --------------------------------------------------------------------------------------


async def test_frame_log_never_shows_passwords(start_simulator, connect, caplog) -> None:
    sim = await start_simulator(small_world())
    with caplog.at_level(logging.DEBUG, logger="mxproxy.connectors.zultys"):
        carol = await connect(sim, login="carol")  # hashed attempt, then clear text
        await carol.services()
    text = caplog.text
    assert "loginRequest" in text and "[redacted]" in text
    assert "carol-pw" not in text and password_hash("carol-pw").strip() not in text
    assert sim.fixture.user("carol").soft_phone_pwd not in text
