"""Call control and event flows (spec §5.12), conferences, presence and error replies."""

from __future__ import annotations

import pytest

from mxproxy.simulator import Quirks
from tests.rawcsta import RawCSTA, RawFrame


async def _monitored(raw_connect, sim, login: str, password: str, ext: str) -> tuple[RawCSTA, int]:  # type: ignore[no-untyped-def]
    conn = await raw_connect(sim)
    assert (await conn.login(login, password)).name == "loginResponce"
    await conn.send(2, f"<MonitorStart><monitorObject><deviceObject>{ext}</deviceObject></monitorObject></MonitorStart>")
    reply = await conn.read_until("MonitorStartResponse")
    assert reply.invoke_id == 2
    return conn, int(reply.text("monitorCrossRefID"))


def _dev(frame: RawFrame, tag: str) -> str:
    return frame.text(f"{tag}/deviceIdentifier")


async def test_monitor_start_gives_a_cross_ref_and_user_may_monitor_only_own_ext(start_simulator, raw_connect):
    sim = await start_simulator()
    conn, ref = await _monitored(raw_connect, sim, "dmitrys", "78561", "3095")
    assert ref >= 1
    await conn.send(3, "<MonitorStart><monitorObject><deviceObject>3044</deviceObject></monitorObject></MonitorStart>")
    err = await conn.read()
    assert (err.invoke_id, err.name) == (3, "CSTAErrorCode")
    await conn.send(4, f"<MonitorStop><monitorCrossRefID>{ref}</monitorCrossRefID></MonitorStop>")
    assert (await conn.read()).invoke_id == 4
    await conn.send(5, f"<MonitorStop><monitorCrossRefID>{ref}</monitorCrossRefID></MonitorStop>")
    assert (await conn.read()).name == "CSTAErrorCode"


async def test_server_session_monitors_any_extension_with_distinct_cross_refs(start_simulator, raw_connect):
    sim = await start_simulator()
    conn = await raw_connect(sim)
    await conn.send(1, '<loginRequest type="Server"><userName>mxflex</userName><pwd>pass3042</pwd></loginRequest>')
    await conn.read()
    refs = []
    for i, ext in enumerate(("3095", "3044"), start=2):
        await conn.send(i, f'<MonitorStart xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4">'
                           f"<monitorObject><deviceObject>{ext}</deviceObject></monitorObject></MonitorStart>")
        refs.append(int((await conn.read()).text("monitorCrossRefID")))
    assert len(set(refs)) == 2
    await conn.send(9, "<MonitorStart><monitorObject><deviceObject>9999999</deviceObject></monitorObject></MonitorStart>")
    assert (await conn.read()).name == "CSTAErrorCode"
    call_id = await sim.incoming_call("3095", "3044")
    frames = [await conn.read() for _ in range(3)]  # the internal caller's Originated, then Delivered x2
    assert [f.name for f in frames] == ["OriginatedEvent", "DeliveredEvent", "DeliveredEvent"]
    delivered = frames[1:]
    assert {int(f.text("monitorCrossRefID")) for f in delivered} == set(refs)
    assert {f.text("connection/callID") for f in delivered} == {str(call_id)}


async def test_incoming_call_answer_and_far_end_hangup(start_simulator, raw_connect):
    sim = await start_simulator()
    conn, ref = await _monitored(raw_connect, sim, "dmitrys", "78561", "3095")
    call_id = await sim.incoming_call(to_ext="3095", from_number="+15125550100", from_name="Outside Caller")
    ev = await conn.read_until("DeliveredEvent")
    assert ev.invoke_id == 9999 and int(ev.text("monitorCrossRefID")) == ref
    assert ev.text("connection/callID") == str(call_id) and ev.text("connection/deviceID") == "3095"
    assert ev.text("connection/globalCallID").isdigit()
    assert (_dev(ev, "callingDevice"), _dev(ev, "calledDevice"), _dev(ev, "alertingDevice")) == ("+15125550100", "3095", "3095")
    assert ev.text("localConnectionInfo") == "alerting" and ev.text("cause") == "normal"
    assert ev.text("callingDisplayName") == "Outside Caller"
    assert ev.root.find("cad").get("name") == "__FIRST_CALL_ID__"
    # the user answers on a softphone: AssignDevice then AnswerCall
    await conn.send(3, '<AssignDevice><deviceID type="device">sipPhone</deviceID></AssignDevice>')
    assigned = await conn.read()
    assert (assigned.invoke_id, assigned.name, assigned.text("deviceID")) == (3, "AssignDeviceInfo", "sipPhone")
    await conn.send(4, f"<AnswerCall><callToBeAnswered><callID>{call_id}</callID><deviceID>sipPhone</deviceID></callToBeAnswered></AnswerCall>")
    direct = await conn.read()
    assert direct.invoke_id == 4 and direct.name == "AnswerCallResponse"
    est = await conn.read()
    assert est.name == "EstablishedEvent" and _dev(est, "answeringDevice") == "3095"
    assert est.text("establishedConnection/callID") == str(call_id)
    await sim.hangup(call_id)
    cleared = await conn.read()
    assert cleared.name == "ConnectionClearedEvent" and _dev(cleared, "releasingDevice") == "+15125550100"
    assert sim.calls() == []


async def test_make_call_to_an_internal_extension_reaches_both_monitors(start_simulator, raw_connect):
    sim = await start_simulator()
    caller, caller_ref = await _monitored(raw_connect, sim, "dmitrys", "78561", "3095")
    callee, callee_ref = await _monitored(raw_connect, sim, "peterh", "pass3044", "3044")
    await caller.send(5, '<MakeCall><callingDevice typeOfNumber="deviceID">3095</callingDevice>'
                         "<calledDirectoryNumber>3044</calledDirectoryNumber></MakeCall>")
    response = await caller.read_until("MakeCallResponse")
    assert response.invoke_id == 5
    call_id = response.text("callingDevice/callID")
    assert response.text("callingDevice/deviceID") == "3095" and response.text("calledDevice") == "3044"
    events = [await caller.read() for _ in range(3)]
    assert [e.name for e in events] == ["OriginatedEvent", "DivertedEvent", "DeliveredEvent"]
    assert all(e.text("monitorCrossRefID") == str(caller_ref) for e in events)
    assert _dev(events[2], "alertingDevice") == "3044"
    ring = await callee.read_until("DeliveredEvent")
    assert int(ring.text("monitorCrossRefID")) == callee_ref and ring.text("connection/callID") == call_id
    assert _dev(ring, "callingDevice") == "3095" and ring.text("callingDisplayName") == "Dmitry Sedykh"
    # the callee answers; both see Established
    await callee.send(6, f"<AnswerCall><callToBeAnswered><callID>{call_id}</callID><deviceID></deviceID></callToBeAnswered></AnswerCall>")
    assert (await callee.read()).invoke_id == 6
    assert (await callee.read()).name == "EstablishedEvent"
    assert (await caller.read()).name == "EstablishedEvent"
    # hold / retrieve by the caller: direct response first, then the events to both
    await caller.send(7, f"<HoldCall><callToBeHeld><callID>{call_id}</callID><deviceID>3095</deviceID></callToBeHeld></HoldCall>")
    direct = await caller.read()
    assert (direct.invoke_id, direct.name) == (7, "HoldCallResponse")
    held = await caller.read()
    assert held.name == "HeldEvent" and _dev(held, "holdingDevice") == "3095" and held.text("localConnectionInfo") == "hold"
    assert (await callee.read()).name == "HeldEvent"
    await caller.send(8, f"<RetrieveCall><callToBeRetrieved><callID>{call_id}</callID><deviceID>3095</deviceID></callToBeRetrieved></RetrieveCall>")
    assert (await caller.read()).invoke_id == 8
    assert _dev(await caller.read(), "retrievingDevice") == "3095"
    assert (await callee.read()).name == "RetrievedEvent"
    # the caller hangs up: direct response and ConnectionCleared to both
    await caller.send(9, f"<ClearConnection><connectionToBeCleared><callID>{call_id}</callID><deviceID>3095</deviceID></connectionToBeCleared></ClearConnection>")
    direct = await caller.read()
    assert (direct.invoke_id, direct.name) == (9, "ClearConnectionResponse")
    cleared = await caller.read()
    assert cleared.name == "ConnectionClearedEvent" and _dev(cleared, "releasingDevice") == "3095"
    assert cleared.text("droppedConnection/callID") == call_id
    assert (await callee.read()).name == "ConnectionClearedEvent"


async def _transfer_an_answered_call(start_simulator, raw_connect, caller: str, to: str):  # type: ignore[no-untyped-def]
    """dmitrys (3095) answers a call from ``caller`` and single-step transfers it to ``to``."""
    sim = await start_simulator()
    conn, _ = await _monitored(raw_connect, sim, "dmitrys", "78561", "3095")
    call_id = await sim.incoming_call("3095", caller)
    await conn.read_until("DeliveredEvent")
    await sim.answer(call_id)
    await conn.read_until("EstablishedEvent")
    await conn.send(3, f"<SingleStepTransferCall><activeCall><callID>{call_id}</callID><deviceID>3095</deviceID></activeCall>"
                       f"<transferredTo>{to}</transferredTo></SingleStepTransferCall>")
    return sim, conn


async def test_single_step_transfer_answers_with_the_new_call_then_events(start_simulator, raw_connect):
    sim, conn = await _transfer_an_answered_call(start_simulator, raw_connect, "79031744437", "3044")
    direct = await conn.read()
    assert (direct.invoke_id, direct.name) == (3, "SingleStepTransferCallResponse")
    assert direct.text("transferredCall/deviceID") == "3044" and direct.text("transferredCall/callID").isdigit()
    transfered = await conn.read()
    assert transfered.name == "TransferedEvent" and _dev(transfered, "transferredToDevice") == "3044"
    assert (await conn.read()).name == "ConnectionClearedEvent"
    assert [c["called"]["device"] for c in sim.calls()] == ["3044"]


async def test_a_call_transferred_to_an_outside_number_is_answered_there(start_simulator, raw_connect):
    """Nobody in the simulator can answer an outside number: the transferred call must not stay
    ``alerting`` forever."""
    sim, conn = await _transfer_an_answered_call(start_simulator, raw_connect, "3044", "+15125550100")
    assert (await conn.read()).name == "SingleStepTransferCallResponse"
    [new] = sim.calls()
    assert new["called"] == {"device": "+15125550100", "name": "+15125550100", "state": "connected"}


async def test_unknown_call_ids_get_csta_error_with_the_request_invoke_id(start_simulator, raw_connect):
    sim = await start_simulator()
    conn, _ = await _monitored(raw_connect, sim, "dmitrys", "78561", "3095")
    for invoke, command in (
        (11, "<ClearConnection><connectionToBeCleared><callID>77</callID><deviceID>3095</deviceID></connectionToBeCleared></ClearConnection>"),
        (12, "<HoldCall><callToBeHeld><callID>77</callID><deviceID>3095</deviceID></callToBeHeld></HoldCall>"),
        (13, "<AnswerCall><callToBeAnswered><callID>77</callID><deviceID></deviceID></callToBeAnswered></AnswerCall>"),
    ):
        await conn.send(invoke, command)
        err = await conn.read()
        assert (err.invoke_id, err.name, err.text("operation")) == (invoke, "CSTAErrorCode", "invalidCallIdentifier")
    await conn.expect_silence(0.1)


async def test_another_users_call_is_an_invalid_device(start_simulator, raw_connect):
    sim = await start_simulator()
    conn, _ = await _monitored(raw_connect, sim, "dmitrys", "78561", "3095")
    call_id = await sim.incoming_call("3044", "3055")
    await conn.send(3, f"<ClearConnection><connectionToBeCleared><callID>{call_id}</callID><deviceID>3095</deviceID></connectionToBeCleared></ClearConnection>")
    err = await conn.read()
    assert err.name == "CSTAErrorCode" and err.text("operation") == "invalidDeviceIdentifier"


@pytest.mark.parametrize("layout, root_ids, connection_ids", [("both", True, True), ("root", True, False),
                                                              ("connection", False, True)])
async def test_recording_state_event_layout_quirk_and_recording_mail(start_simulator, raw_connect, layout, root_ids,
                                                                       connection_ids):
    sim = await start_simulator(quirks=Quirks(recording_layout=layout))
    conn, _ = await _monitored(raw_connect, sim, "dmitrys", "78561", "3095")
    call_id = await sim.incoming_call("3095", "3044")
    await sim.answer(call_id)
    await conn.read_until("EstablishedEvent")
    await conn.send(3, f"<StartRecording><Call><callID>{call_id}</callID><deviceID>sipPhone</deviceID></Call></StartRecording>")
    assert (await conn.read()).invoke_id == 3
    state = await conn.read()
    assert state.name == "RecordingStateEvent" and state.text("RecIsActive") == "true" and state.text("RecIsAvailable") == "true"
    assert (state.text("callID") == str(call_id)) is root_ids
    assert (state.text("connection/callID") == str(call_id)) is connection_ids
    await conn.send(4, f"<StopRecording><Call><callID>{call_id}</callID><deviceID>sipPhone</deviceID></Call></StopRecording>")
    assert (await conn.read()).invoke_id == 4
    assert (await conn.read()).text("RecIsActive") == "false"
    mail = await conn.read()
    assert mail.name == "MailIncomingReadyEvent" and mail.text("mediaType") == "Recording"
    assert mail.root.get("from") == "3044" and mail.root.get("ownerId") == "43884851147406145"


async def test_incoming_voicemail_event_and_presence_changes(start_simulator, raw_connect):
    sim = await start_simulator()
    conn, ref = await _monitored(raw_connect, sim, "dmitrys", "78561", "3095")
    peter, _ = await _monitored(raw_connect, sim, "peterh", "pass3044", "3044")
    mail_id = await sim.leave_voicemail(ext="3095", from_number="3044", from_name="Peter Hyde", duration=7)
    ev = await conn.read_until("MailIncomingReadyEvent")
    assert int(ev.text("mailId")) == mail_id and ev.text("monitorCrossRefID") == str(ref)
    assert ev.root.get("to") == "3095" and ev.text("read") == "false" and ev.text("duration") == "7"
    await peter.send(5, '<presence status="BeRightBack"><presenceNote>lunch</presenceNote></presence>')
    own = await peter.read_until("presence")
    while own.root.get("status") != "BeRightBack":  # skip the one sent at login
        own = await peter.read_until("presence")
    assert own.root.get("from") == "0"
    seen = await conn.read_until("presence")
    while seen.root.get("status") != "BeRightBack":
        seen = await conn.read_until("presence")
    assert seen.root.get("from") == "43884851428118509" and seen.text("presenceNote") == "lunch"
    await peter.expect_silence(0.1)  # presence is fire-and-forget: no direct response


async def test_iq_set_mode_gets_no_reply_and_is_recorded(start_simulator, raw_connect):
    sim = await start_simulator()
    conn, _ = await _monitored(raw_connect, sim, "dmitrys", "78561", "3095")
    await conn.send(3, '<iq type="set" id="mode" mode="remote" ringdelay="1" vmdelay="30"><address>79031744445</address></iq>')
    await conn.expect_silence(0.2)
    info = [s for s in sim.sessions() if s.login == "dmitrys"][0]
    assert info.call_mode == {"mode": "remote", "ringdelay": "1", "vmdelay": "30", "address": "79031744445"}


async def test_conferences_direct_response_then_event(start_simulator, raw_connect):
    sim = await start_simulator()
    conn = await raw_connect(sim)
    await conn.login("dmitrys", "78561")
    await conn.read_until("presence")
    await conn.send(2, "<GetConfList><ownerId>43884851147406145</ownerId><iter>0</iter></GetConfList>")
    listing = await conn.read()
    assert [c.findtext("name") for c in listing.root.findall("conferences/conf")] == ["Weekly sync"]
    fields = ("<confId></confId><ownerId>0</ownerId><name>Test Conf</name><accessId>47281964</accessId>"
              "<description></description><type>Once</type><startDate>1516021200</startDate><duration>30</duration>"
              "<waitForOwner>false</waitForOwner><delOnOwnerLeave>false</delOnOwnerLeave><ws>None</ws><wsType>Undefined</wsType>")
    await conn.send(3, f"<CreateConference>{fields}</CreateConference>")
    direct = await conn.read()
    assert direct.invoke_id == 3 and direct.name == "CreateConferenceResponse"
    added = await conn.read()
    assert (added.invoke_id, added.name, added.text("name")) == (9999, "ConfAddEvent", "Test Conf")
    conf_id = added.text("confId")
    assert conf_id and added.text("ownerId") == "43884851147406145"
    await conn.send(4, f"<UpdateConference>{fields.replace('<confId></confId>', f'<confId>{conf_id}</confId>').replace('Test Conf', 'Renamed')}</UpdateConference>")
    assert (await conn.read()).invoke_id == 4
    updated = await conn.read()
    assert updated.name == "ConfUpdEvent" and updated.text("name") == "Renamed"
    await conn.send(5, f"<DeleteConference><confId>{conf_id}</confId></DeleteConference>")
    assert (await conn.read()).invoke_id == 5
    assert (await conn.read()).name == "ConfDelEvent"
    await conn.send(6, f"<DeleteConference><confId>{conf_id}</confId></DeleteConference>")
    assert (await conn.read()).name == "CSTAErrorCode"
    await conn.send(7, "<GetConfServerInfo/>")
    info = await conn.read()
    assert info.invoke_id == 7 and info.text("inviteSubject") == "Conference Call: %Date% @ %Time% - %Subject%"
    assert "\n\nSubject: %Subject%" in info.text("inviteBody")
    await conn.send(8, "<JoinConf><callId>12345</callId><accessId>47281964</accessId></JoinConf>")
    assert (await conn.read()).name == "CSTAErrorCode"


async def test_unknown_command_is_answered_with_csta_error(start_simulator, raw_connect):
    sim = await start_simulator()
    conn = await raw_connect(sim)
    await conn.login("dmitrys", "78561")
    await conn.send(4, "<FrobnicateCall/>")
    err = await conn.read_until("CSTAErrorCode")
    assert err.invoke_id == 4
