"""Every event type, as typed events from the session's stream (simulator, plus a scripted peer
for FailedEvent, which the simulator's call model never produces)."""

from __future__ import annotations

import asyncio

from mxproxy.connectors.base import (
    ConnectionCleared,
    Delivered,
    Diverted,
    Established,
    Failed,
    Held,
    MailIncomingReady,
    Originated,
    PresenceChanged,
    RecordingState,
    Retrieved,
    SessionEnded,
    Transferred,
)
from tests.connectors.zultys.conftest import EventReader, small_world


async def test_incoming_call_answered_and_hung_up(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    monitor = await alice.start_monitor()
    events = EventReader(alice)
    call_id = await sim.incoming_call(to_ext="201", from_number="3044", from_name="Peter Hyde")
    delivered = await events.next(Delivered)
    assert (delivered.call_id, delivered.calling_device, delivered.called_device, delivered.alerting_device) == (
        call_id, "3044", "201", "201")
    assert delivered.monitor_id == monitor and delivered.local_connection_info == "alerting"
    assert delivered.calling_display_name == "Peter Hyde" and delivered.cause == "normal"
    assert delivered.global_call_id.isdigit() and delivered.cads[0].name == "__FIRST_CALL_ID__"
    assert delivered.call_type_flags > 0 and delivered.cmds_allowed > 0
    await sim.answer(call_id)
    established = await events.next(Established)
    assert (established.call_id, established.answering_device, established.calling_device) == (call_id, "201", "3044")
    await sim.hangup(call_id, by="3044")
    cleared = await events.next(ConnectionCleared)
    assert (cleared.call_id, cleared.releasing_device) == (call_id, "3044")


async def test_server_call_originated_diverted_delivered(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    await alice.start_monitor()
    events = EventReader(alice)
    result = await alice.make_call("201", "79031744437")
    originated = await events.next(Originated)
    assert (originated.call_id, originated.calling_device, originated.called_device) == (
        result.call_id, "201", "79031744437")
    diverted = await events.next(Diverted)
    assert (diverted.diverting_device, diverted.new_destination) == ("201", "79031744437")
    delivered = await events.next(Delivered)
    assert delivered.alerting_device == "79031744437"


async def test_hold_retrieve_transfer_events(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    await alice.start_monitor()
    events = EventReader(alice)
    call_id = await sim.incoming_call(to_ext="201", from_number="5550001")
    await alice.answer_call(call_id, "201")
    await alice.hold_call(call_id, "201")
    assert (await events.next(Held)).holding_device == "201"
    await alice.retrieve_call(call_id, "201")
    assert (await events.next(Retrieved)).retrieving_device == "201"
    await alice.transfer_call(call_id, "201", "202")
    transferred = await events.next(Transferred)
    assert (transferred.call_id, transferred.transferring_device, transferred.transferred_to_device) == (
        call_id, "201", "202")
    assert (await events.next(ConnectionCleared)).call_id == call_id


async def test_voicemail_and_recording_events(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    await alice.start_monitor()
    events = EventReader(alice)
    mail_id = await sim.leave_voicemail(ext="201", from_number="3044", from_name="Peter Hyde", duration=7)
    mail = await events.next(MailIncomingReady)
    assert (mail.mail_id, mail.media_type, mail.sender, mail.from_name, mail.to, mail.duration, mail.read) == (
        str(mail_id), "VoiceMail", "3044", "Peter Hyde", "201", 7, False)
    assert mail.owner_id == 43884851147406145 and mail.file_format == "wav"
    call_id = await sim.incoming_call(to_ext="201", from_number="5550001")
    await alice.answer_call(call_id, "201")
    await alice.start_recording(call_id, "201")
    started = await events.next(RecordingState)
    assert (started.call_id, started.available, started.active) == (call_id, True, True)
    await alice.stop_recording(call_id, "201")
    assert (await events.next(RecordingState)).active is False
    recording = await events.next(MailIncomingReady)
    assert recording.media_type == "Recording"


async def test_presence_of_another_user(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    events = EventReader(alice)
    await sim.set_presence(ext="202", status="BeRightBack", note="lunch")
    changed = await events.next(PresenceChanged, timeout=3)
    while changed.user_id == 0:  # own status after login comes first
        changed = await events.next(PresenceChanged)
    assert (changed.user_id, changed.status, changed.note) == (43884851147406146, "BeRightBack", "lunch")


async def test_forced_logout_ends_the_session_cleanly(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    events = EventReader(alice)
    await sim.force_logout("alice", mode="forced")
    ended = await events.next(SessionEnded)
    assert ended.mode == "forced" and not alice.is_alive


async def test_failed_event_from_a_scripted_mx(scripted_mx, connect) -> None:
    failed_xml = ("<FailedEvent><monitorCrossRefID>1</monitorCrossRefID><failedConnection><callID>9</callID>"
                  "<deviceID>201</deviceID></failedConnection><callingDevice><deviceIdentifier>201</deviceIdentifier>"
                  "</callingDevice><calledDevice><deviceIdentifier>999</deviceIdentifier></calledDevice>"
                  "<localConnectionInfo>fail</localConnectionInfo><cause>busy</cause></FailedEvent>")

    async def handler(conn, request) -> None:
        if request.root.tag == "MonitorStart":
            conn.send(request.invoke_id, "<MonitorStartResponse><monitorCrossRefID>1</monitorCrossRefID>"
                                         "</MonitorStartResponse>")
            conn.send(9999, failed_xml)

    mx = await scripted_mx(handler)
    alice = await connect(mx.port)
    events = EventReader(alice)
    await alice.start_monitor()
    failed = await events.next(Failed)
    assert (failed.call_id, failed.device_id, failed.calling_device, failed.called_device, failed.cause) == (
        9, "201", "201", "999", "busy")


async def test_slow_consumer_drops_oldest_events_and_never_blocks_the_reader(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim, event_queue=5)
    for i in range(30):
        await sim.set_presence(ext="202", status=f"S{i}")
    await asyncio.sleep(0.3)
    assert await alice.services() == []  # the reader still serves replies
    assert alice.dropped_events > 0
    await alice.close()
    got = [e async for e in alice.events()]
    assert len(got) <= 6 and isinstance(got[-1], SessionEnded)
    assert [e.status for e in got[:-1]] == [f"S{i}" for i in range(30 - len(got) + 1, 30)]
