"""The simulator's variant quirks on the wire (issue 8): invoke ids of multi-part results, how call
control is answered, and the XML dialects; plus named profiles (``--profile``)."""

from __future__ import annotations

import pytest

from mxproxy.simulator import QuirkError, Quirks
from mxproxy.simulator.cli import run
from mxproxy.simulator.quirks import PROFILES
from tests.connectors.zultys.conftest import small_world

EVENT = 9999


async def logged_in(start_simulator, raw_connect, quirks: Quirks, login: str = "alice", **kw):
    sim = await start_simulator(small_world(**kw), quirks=quirks)
    conn = await raw_connect(sim)
    reply = await conn.login(login, f"{login}-pw")
    return sim, conn, reply


@pytest.mark.parametrize("how, expected", [("event", [EVENT, EVENT, EVENT]), ("request", [7, 8, 9]),
                                           ("mixed", [EVENT, 8, EVENT])])
async def test_address_book_pages_use_the_configured_invoke_id(start_simulator, raw_connect, how, expected) -> None:
    sim, conn, _ = await logged_in(start_simulator, raw_connect, Quirks(multipart_invoke_id=how), directory_entries=117)
    ids = []
    for index, iid in enumerate((7, 8, 9)):
        await conn.send(iid, f'<iq type="get" id="addressbook" index="{index}"></iq>')
        ids.append((await conn.read_until("ablist")).invoke_id)
    assert ids == expected


@pytest.mark.parametrize("how, expected", [("request", [5, 5, 5]), ("mixed", [EVENT, 5, EVENT])])
async def test_call_log_chunks_use_the_configured_invoke_id(start_simulator, raw_connect, how, expected) -> None:
    fx = small_world()
    fx.set_call_log("alice", 43)
    sim = await start_simulator(fx, quirks=Quirks(multipart_invoke_id=how))
    conn = await raw_connect(sim)
    await conn.login("alice", "alice-pw")
    await conn.send(5, '<iq type="get" id="calllog" timestamp="-1"></iq>')
    frames = [f for f in await conn.read_all() if f.name == "callloginfo"]
    assert [f.invoke_id for f in frames] == expected


async def call_control_frames(start_simulator, raw_connect, quirks: Quirks) -> list[tuple[int, str]]:
    sim = await start_simulator(small_world(), quirks=quirks)
    conn = await raw_connect(sim)
    await conn.login("alice", "alice-pw")
    await conn.send(2, "<MonitorStart><monitorObject><deviceObject>201</deviceObject></monitorObject></MonitorStart>")
    await conn.read_until("MonitorStartResponse")
    call_id = await sim.incoming_call(to_ext="201", from_number="5550001")
    await conn.read_until("DeliveredEvent")
    await conn.send(3, f"<ClearConnection><connectionToBeCleared><callID>{call_id}</callID><deviceID>201</deviceID>"
                       "</connectionToBeCleared></ClearConnection>")
    return [(f.invoke_id, f.name) for f in await conn.read_all()]


@pytest.mark.parametrize("reply, invoke, expected", [
    ("both", "event", [(3, "ClearConnectionResponse"), (EVENT, "ConnectionClearedEvent")]),
    ("event", "event", [(EVENT, "ConnectionClearedEvent")]),
    ("event-first", "event", [(EVENT, "ConnectionClearedEvent"), (3, "ClearConnectionResponse")]),
    ("event-first", "request", [(3, "ConnectionClearedEvent"), (3, "ClearConnectionResponse")]),
    ("response", "event", [(3, "ClearConnectionResponse")]),
])
async def test_call_control_is_answered_as_configured(start_simulator, raw_connect, reply, invoke, expected) -> None:
    frames = await call_control_frames(start_simulator, raw_connect,
                                       Quirks(call_control_reply=reply, call_event_invoke_id=invoke))
    assert frames == expected


async def test_dialect_quirks_reshape_every_message(start_simulator, raw_connect) -> None:
    quirks = Quirks(xml_prolog=True, reply_namespace=True, empty_elements="self-closing", booleans="digit",
                    extra_markup=True, login_reply="loginResponse", mail_media_type=False, error_layout="root",
                    mode_reply=True)
    fx = small_world()
    fx.add_voicemail("alice", audio_size=100)
    sim = await start_simulator(fx, quirks=quirks)
    conn = await raw_connect(sim)
    login = await conn.login("alice", "alice-pw")
    assert login.name == "loginResponse" and login.root.get("x-extra") == "1"
    assert login.payload.startswith(b'<?xml version="1.0" encoding="utf-8"?><loginResponse xmlns="')
    await conn.send(4, "<MailGetListIncoming><userID>201</userID></MailGetListIncoming>")
    mails = await conn.read_until("MailGetListIncomingResponse")
    assert b"<read x-extra=\"1\">0</read>" in mails.payload and b"<note x-extra=\"1\"/>" in mails.payload
    assert mails.root.find("mail/mediaType") is None and mails.root.find("x-unknown/x-deep") is not None
    await conn.send(5, "<HoldCall><callToBeHeld><callID>99</callID><deviceID>201</deviceID></callToBeHeld></HoldCall>")
    error = await conn.read_until("CSTAErrorCode")
    assert (error.root.text, error.invoke_id) == ("invalidCallIdentifier", 5)
    await conn.send(6, '<iq type="set" id="mode" mode="local"></iq>')
    mode = await conn.read_until("iq")
    assert (mode.invoke_id, mode.root.get("type"), mode.root.get("id")) == (6, "result", "mode")


async def test_server_keepalives_go_out_after_login(start_simulator, raw_connect) -> None:
    sim = await start_simulator(small_world(), quirks=Quirks(server_keepalive=0.05))
    conn = await raw_connect(sim)
    await conn.login("alice", "alice-pw")
    first, second = await conn.read_until("keepalive"), await conn.read_until("keepalive")
    assert (first.invoke_id, second.invoke_id, first.payload) == (0, 0, b"<keepalive />")


async def test_voicemail_chunks_can_go_out_on_9999(start_simulator, raw_connect) -> None:
    fx = small_world()
    mail = fx.add_voicemail("alice", audio_size=100)
    sim = await start_simulator(fx, quirks=Quirks(mail_chunk_invoke_id="event"))
    conn = await raw_connect(sim)
    await conn.login("alice", "alice-pw")
    await conn.send(8, f"<MailReceiveIncoming><faxSessionID>{mail.mail_id}</faxSessionID></MailReceiveIncoming>")
    assert (await conn.read_until("MailReceiveIncomingResponse")).invoke_id == EVENT


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_is_a_valid_set_of_quirks(name) -> None:
    quirks = Quirks.profile(name, ["event_gap=0.02"])
    assert quirks.event_gap == 0.02
    assert all(getattr(quirks, k) == v for k, v in PROFILES[name].items())


def test_an_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(QuirkError, match="name-matched"):
        Quirks.profile("nope")


def test_cli_refuses_an_unknown_profile_with_exit_2(capsys) -> None:
    import argparse

    args = argparse.Namespace(fixture=None, quirk=[], profile="nope", control="", host="127.0.0.1", port=0)
    assert run(args) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err
