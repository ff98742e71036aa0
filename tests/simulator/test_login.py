"""Session lifecycle against hand-written frames: login variants, forced login, keepalive,
commands before login, and malformed input closing only the offending connection."""

from __future__ import annotations

import asyncio

from mxproxy.simulator import Fixture, Quirks, SimUser, demo_fixture
from tests.rawcsta import RawCSTA, build_frame

# exactly what MX Proxy 2.3 writes for dmitrys / 78561 (spec §2.1): 0xdc = 220 bytes in total
LOGIN_DMITRYS = (
    b"\x00\x00\x00\xdc0001"
    b'<loginRequest type="User" platform="iPhone" version="7.0" loginCapab="Audio" '
    b'mediaCapab="Voicemail|CallRec" push_ntf="false"><userName>dmitrys</userName>'
    b"<pwd>UsJTDCRy44rSoAe0dqsx/g6XC7M=&#xA;</pwd></loginRequest>"
)
LOGIN_DMITRYS_WRONG = (
    b"\x00\x00\x00\xdc0007"
    b'<loginRequest type="User" platform="iPhone" version="7.0" loginCapab="Audio" '
    b'mediaCapab="Voicemail|CallRec" push_ntf="false"><userName>dmitrys</userName>'
    b"<pwd>pLSKgc2rHhpd03kH1shcocYd3Hw=&#xA;</pwd></loginRequest>"
)


async def test_mx_proxy_login_frame_gets_login_responce_with_the_users_attributes(start_simulator, raw_connect):
    sim = await start_simulator()
    conn = await raw_connect(sim)
    await conn.send_raw(LOGIN_DMITRYS)
    reply = await conn.read()
    assert reply.invoke_id == 1
    assert reply.name == "loginResponce"
    a = reply.root.attrib
    assert a["Code"] == "0" and a["sn"] == "63022" and a["apiversion"] == "11"
    assert a["ext"] == "3095" and a["userId"] == "43884851147406145"
    assert len(a["softPhonePwd"]) == 32
    assert reply.root.text == "Login OK"
    presence = await conn.read()
    assert (presence.invoke_id, presence.name, presence.root.get("from")) == (9999, "presence", "0")
    assert [s.login for s in sim.sessions()] == ["dmitrys"]


async def test_raw_newline_in_pwd_and_a_prolog_with_namespace_are_accepted(start_simulator, raw_connect):
    sim = await start_simulator()
    conn = await raw_connect(sim)
    await conn.send(3, '<?xml version="1.0" encoding="utf-8"?><loginRequest xmlns="urn:x" type="User">'
                       "<userName>dmitrys</userName><pwd>UsJTDCRy44rSoAe0dqsx/g6XC7M=\n</pwd></loginRequest>")
    reply = await conn.read()
    assert (reply.invoke_id, reply.name) == (3, "loginResponce")


async def test_wrong_password_is_login_failed_code_2_and_the_connection_stays_usable(start_simulator, raw_connect):
    sim = await start_simulator()
    conn = await raw_connect(sim)
    await conn.send_raw(LOGIN_DMITRYS_WRONG)
    reply = await conn.read()
    assert (reply.invoke_id, reply.name, reply.root.get("Code")) == (7, "loginFailed", "2")
    assert int(reply.root.get("apiversion")) >= 3 and reply.root.get("sn") == "63022"
    assert reply.root.text
    # same connection, clear-text retry with the right password works
    ok = await conn.login("dmitrys", "78561", invoke_id=8, hashed=False)
    assert ok.name == "loginResponce"


async def test_unknown_user_is_login_failed_code_2(start_simulator, raw_connect):
    conn = await raw_connect(await start_simulator())
    reply = await conn.login("nobody", "x")
    assert (reply.name, reply.root.get("Code")) == ("loginFailed", "2")


async def test_ldap_user_rejects_the_hash_with_code_4_and_accepts_the_clear_password(start_simulator, raw_connect):
    fixture = Fixture(users=[SimUser(login="carol", password="s3cret", ext="301", jid=3001, ldap=True)])
    conn = await raw_connect(await start_simulator(fixture))
    first = await conn.login("carol", "s3cret", invoke_id=1)
    assert (first.name, first.root.get("Code")) == ("loginFailed", "4")
    second = await conn.login("carol", "s3cret", invoke_id=2, hashed=False)
    assert (second.name, second.root.get("ext")) == ("loginResponce", "301")


async def test_server_login_has_no_extension_and_only_for_server_users(start_simulator, raw_connect):
    sim = await start_simulator()
    conn = await raw_connect(sim)
    await conn.send(1, '<loginRequest type="Server" platform="CRM" version="1.0"><userName>mxflex</userName>'
                       "<pwd>pass3042</pwd></loginRequest>")
    reply = await conn.read()
    assert (reply.name, reply.root.get("ext"), reply.root.get("userId")) == ("loginResponce", "", "0")
    other = await raw_connect(sim)
    await other.send(1, '<loginRequest type="Server"><userName>peterh</userName><pwd>pass3044</pwd></loginRequest>')
    refused = await other.read()
    assert refused.name == "loginFailed"


async def test_forced_login_sends_logout_to_older_sessions_then_closes_them(start_simulator, raw_connect):
    sim = await start_simulator()
    old = await raw_connect(sim)
    assert (await old.login("dmitrys", "78561")).name == "loginResponce"
    await old.read_until("presence")
    bystander = await raw_connect(sim)
    assert (await bystander.login("peterh", "pass3044")).name == "loginResponce"
    new = await raw_connect(sim)
    assert (await new.login("dmitrys", "78561", forced="true")).name == "loginResponce"
    logout = await old.read()
    assert (logout.invoke_id, logout.name, logout.root.get("mode")) == (9999, "Logout", "forced")
    assert await old.is_closed_by_peer()
    await bystander.read_until("presence")
    await bystander.expect_silence(0.2)
    active = [s for s in sim.sessions() if s.active]
    assert sorted(s.login for s in active) == ["dmitrys", "peterh"]


async def test_login_without_forced_keeps_older_sessions(start_simulator, raw_connect):
    sim = await start_simulator()
    first, second = await raw_connect(sim), await raw_connect(sim)
    assert (await first.login("dmitrys", "78561")).name == "loginResponce"
    assert (await second.login("dmitrys", "78561")).name == "loginResponce"
    await first.read_until("presence")
    await first.expect_silence(0.2)
    assert sum(1 for s in sim.sessions() if s.active and s.login == "dmitrys") == 2


async def test_commands_before_login_are_ignored(start_simulator, raw_connect):
    sim = await start_simulator()
    conn = await raw_connect(sim)
    await conn.send(1, "<GetServiceList/>")
    await conn.expect_silence(0.2)
    assert sim.sessions()[0].commands == ["GetServiceList"]


async def test_commands_before_login_get_an_error_when_the_quirk_is_on(start_simulator, raw_connect):
    conn = await raw_connect(await start_simulator(quirks=Quirks(error_before_login=True)))
    await conn.send(5, "<GetServiceList/>")
    reply = await conn.read()
    assert (reply.invoke_id, reply.name) == (5, "CSTAErrorCode")


async def test_keepalive_is_accepted_with_any_id_and_never_answered(start_simulator, raw_connect):
    sim = await start_simulator()
    conn = await raw_connect(sim)
    await conn.send_raw(b"\x00\x00\x00\x150000<keepalive />")
    await conn.login("dmitrys", "78561")
    await conn.read_until("presence")
    await conn.send_raw(b"\x00\x00\x00\x150000<keepalive />")
    await conn.send(17, '<?xml version="1.0" encoding="utf-8"?><keepalive/>')
    await conn.expect_silence(0.2)
    await conn.send(18, "<GetServiceList></GetServiceList>")
    assert (await conn.read()).invoke_id == 18


async def test_bad_header_closes_only_that_connection(start_simulator, raw_connect):
    sim = await start_simulator()
    good = await raw_connect(sim)
    await good.login("dmitrys", "78561")
    bad = await raw_connect(sim)
    await bad.send_raw(b"\x00\x00\x00\x10ab12<keepalive/>")
    assert await bad.is_closed_by_peer()
    short = await raw_connect(sim)
    await short.send_raw(b"\x00\x00\x00\x040001")
    assert await short.is_closed_by_peer()
    await good.send(2, "<GetServiceList/>")
    assert (await good.read_until("GetServiceListResponse")).invoke_id == 2
    again = await raw_connect(sim)
    assert (await again.login("peterh", "pass3044")).name == "loginResponce"


async def test_malformed_xml_closes_the_connection(start_simulator, raw_connect):
    conn = await raw_connect(await start_simulator())
    await conn.send(1, "<loginRequest><userName>x</userName>")
    assert await conn.is_closed_by_peer()


async def test_xml_with_a_dtd_or_entities_is_refused_and_the_server_keeps_serving(start_simulator, raw_connect):
    sim = await start_simulator()
    conn = await raw_connect(sim)
    await conn.send(1, '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                       "<loginRequest><userName>&b;</userName><pwd>x</pwd></loginRequest>")
    assert await conn.is_closed_by_peer()
    other = await raw_connect(sim)
    assert (await other.login("dmitrys", "78561")).name == "loginResponce"


async def test_logout_closes_the_connection_and_is_recorded(start_simulator, raw_connect):
    sim = await start_simulator()
    conn = await raw_connect(sim)
    await conn.login("dmitrys", "78561")
    await conn.send(2, "<logout></logout>")
    assert await conn.is_closed_by_peer()
    for _ in range(100):
        info = sim.sessions()[0]
        if not info.active:
            break
        await asyncio.sleep(0.01)
    assert not info.active and info.commands == ["loginRequest", "logout"]


async def test_idle_connections_are_dropped_when_the_quirk_is_set(start_simulator, raw_connect):
    conn = await raw_connect(await start_simulator(quirks=Quirks(idle_timeout=0.2)))
    await conn.login("dmitrys", "78561")
    assert await conn.is_closed_by_peer(timeout=3)


async def test_demo_fixture_logins_all_work(start_simulator, raw_connect):
    sim = await start_simulator()
    conn = await raw_connect(sim)
    for i, user in enumerate(demo_fixture().users, start=1):
        reply = await conn.login(user.login, user.password, invoke_id=i)
        assert reply.name == "loginResponce", user.login
        assert reply.root.get("ext") == user.ext
    frame = build_frame(1, "<x/>")
    assert frame[:4] == b"\x00\x00\x00\x0c"


async def test_raw_connection_helper_reads_a_frame_split_over_writes(start_simulator):
    sim = await start_simulator()
    conn = await RawCSTA.open(sim.port)
    try:
        await conn.send_raw(LOGIN_DMITRYS[:10])
        await asyncio.sleep(0.05)
        await conn.send_raw(LOGIN_DMITRYS[10:])
        assert (await conn.read()).name == "loginResponce"
    finally:
        await conn.close()
