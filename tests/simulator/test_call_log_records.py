"""Ended calls leave ``callinfo`` records in the involved users' call logs (spec §4.3), shaped
like the README's samples, and the records come back through ``iq get calllog``."""

from __future__ import annotations

import time

from mxproxy.simulator import Fixture, SimUser
from mxproxy.simulator.fixture import CallLogEntry
from tests.rawcsta import RawCSTA


def _world() -> Fixture:
    fx = Fixture(users=[
        SimUser(login="alice", password="pw-a", ext="201", jid=1001, first_name="Alice", last_name="Smith"),
        SimUser(login="bob", password="pw-b", ext="202", jid=1002, first_name="Bob", last_name="Jones"),
        SimUser(login="carol", password="pw-c", ext="203", jid=1003, first_name="Carol", last_name="White"),
    ])
    fx.set_call_log("alice", 3, first_record_id=500)
    return fx


def _last(fx: Fixture, login: str) -> CallLogEntry:
    return fx.call_logs[login][-1]


async def test_answered_inbound_call_from_outside_is_an_incoming_record(start_simulator):
    fx = _world()
    sim = await start_simulator(fx)
    before = time.time()
    call_id = await sim.incoming_call(to_ext="201", from_number="+15125550100", from_name="Outside")
    await sim.answer(call_id)
    await sim.hangup(call_id)
    assert len(fx.call_logs["alice"]) == 4
    rec = _last(fx, "alice")
    assert (rec.record_id, rec.direction, rec.missed, rec.calling_party_no, rec.original_called_party_no) == (
        503, "incoming", False, "+15125550100", "201")
    assert (rec.first_name, rec.last_name, rec.extension) == ("", "", "")  # the caller is not an MX user
    assert (rec.call_type, rec.leg_type, rec.self_leg_type, rec.monitor_type) == (1, 1, 1, 0)
    assert int(before) <= rec.connect_timestamp <= rec.disconnect_timestamp <= time.time()
    assert rec.gcid == sim.fixture.sn + "-00-0000D-" + f"{call_id:03X}"


async def test_missed_internal_call_is_missed_for_the_callee_and_outgoing_for_the_caller(start_simulator):
    fx = _world()
    sim = await start_simulator(fx)
    call_id = await sim.incoming_call(to_ext="201", from_number="202")
    await sim.hangup(call_id, by="202")
    missed, dialled = _last(fx, "alice"), _last(fx, "bob")
    assert (missed.direction, missed.missed, missed.self_leg_type) == ("incoming", True, 9)
    assert (missed.first_name, missed.last_name, missed.extension) == ("Bob", "Jones", "202")
    assert missed.connect_timestamp > 0  # the ring start, as in the README's missed calls
    assert (dialled.direction, dialled.missed, dialled.self_leg_type, dialled.connect_timestamp) == (
        "outgoing", False, 1, 0)  # unanswered outgoing: no connect time
    assert (dialled.first_name, dialled.extension) == ("Alice", "201")
    assert (missed.calling_party_no, missed.original_called_party_no) == (
        dialled.calling_party_no, dialled.original_called_party_no) == ("202", "201")
    assert missed.gcid == dialled.gcid
    assert {missed.record_id, dialled.record_id} == {503, 504}  # one global, growing record number
    assert "carol" not in fx.call_logs


async def test_answered_server_call_is_outgoing_with_a_connect_time(start_simulator, raw_connect):
    fx = _world()
    sim = await start_simulator(fx)
    conn = await raw_connect(sim)
    assert (await conn.login("alice", "pw-a")).name == "loginResponce"
    await conn.send(2, '<MakeCall><callingDevice typeOfNumber="deviceID">201</callingDevice>'
                       "<calledDirectoryNumber>79031744437</calledDirectoryNumber></MakeCall>")
    call_id = int((await conn.read_until("MakeCallResponse")).text("callingDevice/callID"))
    await sim.answer(call_id)
    await conn.send(3, f"<ClearConnection><connectionToBeCleared><callID>{call_id}</callID><deviceID>201</deviceID>"
                       "</connectionToBeCleared></ClearConnection>")
    await conn.read_until("ClearConnectionResponse")
    rec = _last(fx, "alice")
    assert (rec.direction, rec.missed, rec.calling_party_no, rec.original_called_party_no, rec.self_leg_type) == (
        "outgoing", False, "201", "79031744437", 1)
    assert 0 < rec.connect_timestamp <= rec.disconnect_timestamp


async def test_deflected_call_is_missed_for_the_one_it_rang_at_only(start_simulator, raw_connect):
    fx = _world()
    sim = await start_simulator(fx)
    conn = await raw_connect(sim)
    assert (await conn.login("alice", "pw-a")).name == "loginResponce"
    call_id = await sim.incoming_call(to_ext="201", from_number="5550001")
    await conn.send(2, f"<DeflectCall><callToBeDiverted><callID>{call_id}</callID><deviceID>201</deviceID>"
                       "</callToBeDiverted><newDestination>203</newDestination></DeflectCall>")
    await conn.read_until("DeflectCallResponse")
    deflected = _last(fx, "alice")
    assert (deflected.direction, deflected.missed, deflected.original_called_party_no) == ("incoming", True, "201")
    assert "carol" not in fx.call_logs  # still ringing there
    await sim.answer(call_id)
    await sim.hangup(call_id)
    answered = _last(fx, "carol")
    assert (answered.direction, answered.missed, answered.original_called_party_no) == ("incoming", False, "201")
    assert len(fx.call_logs["alice"]) == 4  # one record for alice, not a second one at the end


async def test_record_ids_keep_growing_over_fixture_edits(start_simulator):
    fx = _world()
    sim = await start_simulator(fx)
    await sim.hangup(await sim.incoming_call(to_ext="201", from_number="5550001"))
    first = _last(fx, "alice").record_id
    fx.set_call_log("bob", 2, first_record_id=9000)  # a test may replace a log while running
    await sim.hangup(await sim.incoming_call(to_ext="202", from_number="5550002"))
    assert first < _last(fx, "bob").record_id == 9002
    await sim.hangup(await sim.incoming_call(to_ext="201", from_number="5550003"))
    assert _last(fx, "alice").record_id == 9003


async def test_new_record_is_served_by_iq_get_calllog(start_simulator, raw_connect):
    fx = _world()
    sim = await start_simulator(fx)
    conn: RawCSTA = await raw_connect(sim)
    assert (await conn.login("alice", "pw-a")).name == "loginResponce"
    start = int(time.time())
    call_id = await sim.incoming_call(to_ext="201", from_number="202")
    await sim.hangup(call_id)
    await conn.send(2, f'<iq type="get" id="calllog" timestamp="{start}"></iq>')
    chunk = await conn.read_until("callloginfo")
    (info,) = chunk.root.findall("callinfo")
    assert (info.get("missed"), info.get("direction")) == ("true", "incoming")
    assert {child.tag: child.text for child in info} == {
        "record_id": str(_last(fx, "alice").record_id), "gcid": _last(fx, "alice").gcid, "connectTimestamp": str(_last(fx, "alice").connect_timestamp),
        "disconnectTimestamp": str(_last(fx, "alice").disconnect_timestamp), "callingPartyNo": "202",
        "originalCalledPartyNo": "201", "firstName": "Bob", "lastName": "Jones", "extension": "202",
        "callType": "1", "legType": "1", "selfLegType": "9", "monitorType": "0",
    }
