"""The normaliser against the real simulator (driven through its control API and the user's own
MX session), on every simulator profile: the MX dialects order and repeat events differently,
the normalised stream must not differ."""

from __future__ import annotations

import pytest

from mxproxy.push.policy import call_uuid
from tests.events.conftest import ALICE, BOB, CALLER, CALLER_NAME, CAROL, EXT, EventsEnv

pytestmark = pytest.mark.profiles


async def test_incoming_call_answered_and_hung_up_is_ringing_answered_ended_once_each(events_env: EventsEnv) -> None:
    env = events_env
    await env.sign_in(ALICE)
    call_id = await env.incoming(ALICE)
    ringing = await env.wait_for(ALICE, "call.ringing")
    await env.post(f"/calls/{call_id}/answer")
    answered = await env.wait_for(ALICE, "call.answered")
    await env.post(f"/calls/{call_id}/hangup")
    ended = await env.wait_for(ALICE, "call.ended")
    await env.settle(ALICE)

    assert env.types(ALICE) == ["call.ringing", "call.answered", "call.ended"]
    for event in (ringing, answered, ended):
        assert event.data["callId"] == call_id
        assert event.data["callUUID"] == call_uuid(ALICE, call_id)
        assert event.data["direction"] == "incoming"
        assert (event.data["localNumber"], event.data["remoteNumber"], event.data["remoteName"]) == \
            (EXT[ALICE], CALLER, CALLER_NAME)
    assert ringing.data["answerTime"] is None
    assert answered.data["answerTime"] is not None and answered.data["startTime"] == ringing.data["startTime"]
    assert ended.data["missed"] is False and ended.data["reason"] == "hangup" and ended.data["endedBy"] == "remote"
    assert ended.data["duration"] >= 0
    assert ringing.id < answered.id < ended.id


async def test_call_nobody_answers_ends_as_missed(events_env: EventsEnv) -> None:
    env = events_env
    await env.sign_in(ALICE)
    call_id = await env.incoming(ALICE)
    await env.wait_for(ALICE, "call.ringing")
    await env.post(f"/calls/{call_id}/hangup")
    ended = await env.wait_for(ALICE, "call.ended")
    await env.settle(ALICE)

    assert env.types(ALICE) == ["call.ringing", "call.ended"]
    assert ended.data["missed"] is True and ended.data["answerTime"] is None and ended.data["duration"] == 0


async def test_outgoing_call_is_dialing_answered_ended(events_env: EventsEnv) -> None:
    env = events_env
    view = await env.sign_in(ALICE)
    result = await view.mx.make_call(EXT[ALICE], "5550199")
    dialing = await env.wait_for(ALICE, "call.dialing")
    await env.post(f"/calls/{result.call_id}/answer")
    await env.wait_for(ALICE, "call.answered")
    await view.mx.clear_connection(result.call_id, EXT[ALICE])
    ended = await env.wait_for(ALICE, "call.ended")
    await env.settle(ALICE)

    assert env.types(ALICE) == ["call.dialing", "call.answered", "call.ended"]
    assert dialing.data["direction"] == "outgoing" and dialing.data["remoteNumber"] == "5550199"
    assert ended.data["missed"] is False and ended.data["endedBy"] == "local"


async def test_hold_and_resume_are_one_event_each_however_the_mx_replies(events_env: EventsEnv) -> None:
    env = events_env
    view = await env.sign_in(ALICE)
    call_id = await env.incoming(ALICE)
    await env.wait_for(ALICE, "call.ringing")
    await view.mx.answer_call(call_id, EXT[ALICE])
    await env.wait_for(ALICE, "call.answered")
    await view.mx.hold_call(call_id, EXT[ALICE])
    held = await env.wait_for(ALICE, "call.held")
    await view.mx.retrieve_call(call_id, EXT[ALICE])
    resumed = await env.wait_for(ALICE, "call.resumed")
    await view.mx.hold_call(call_id, EXT[ALICE])
    await env.wait_for(ALICE, "call.held", 2)
    await view.mx.clear_connection(call_id, EXT[ALICE])
    await env.wait_for(ALICE, "call.ended")
    await env.settle(ALICE)

    assert env.types(ALICE) == ["call.ringing", "call.answered", "call.held", "call.resumed", "call.held",
                                "call.ended"]
    assert held.data["by"] == "local" and resumed.data["by"] == "local"


async def test_transfer_is_transferred_then_ended_for_the_transferring_user(events_env: EventsEnv) -> None:
    env = events_env
    view = await env.sign_in(ALICE)
    await env.sign_in(BOB)
    call_id = await env.incoming(ALICE)
    await env.wait_for(ALICE, "call.ringing")
    await view.mx.answer_call(call_id, EXT[ALICE])
    await env.wait_for(ALICE, "call.answered")
    await view.mx.transfer_call(call_id, EXT[ALICE], EXT[BOB])
    transferred = await env.wait_for(ALICE, "call.transferred")
    ended = await env.wait_for(ALICE, "call.ended")
    bob_ringing = await env.wait_for(BOB, "call.ringing")
    await env.settle(ALICE, BOB)

    assert env.types(ALICE) == ["call.ringing", "call.answered", "call.transferred", "call.ended"]
    assert transferred.data["transferredTo"] == EXT[BOB] and transferred.data["by"] == "local"
    assert ended.data["reason"] == "transferred" and ended.data["missed"] is False
    assert bob_ringing.data["remoteNumber"] == CALLER and bob_ringing.data["callId"] != call_id
    assert env.types(BOB) == ["call.ringing"]


async def test_internal_call_is_dialing_for_the_caller_and_ringing_for_the_callee(events_env: EventsEnv) -> None:
    env = events_env
    view = await env.sign_in(ALICE)
    await env.sign_in(CAROL)
    result = await view.mx.make_call(EXT[ALICE], EXT[CAROL])
    ringing = await env.wait_for(CAROL, "call.ringing")
    await env.post(f"/calls/{result.call_id}/answer")
    await env.wait_for(CAROL, "call.answered")
    await env.post(f"/calls/{result.call_id}/hangup", {"by": EXT[CAROL]})
    await env.wait_for(ALICE, "call.ended")
    await env.wait_for(CAROL, "call.ended")
    await env.settle(ALICE, CAROL)

    assert env.types(ALICE) == ["call.dialing", "call.answered", "call.ended"]
    assert env.types(CAROL) == ["call.ringing", "call.answered", "call.ended"]
    assert ringing.data["remoteNumber"] == EXT[ALICE]
    assert env.of(ALICE, "call.ended")[0].data["endedBy"] == "remote"
    assert env.of(CAROL, "call.ended")[0].data["endedBy"] == "local"
    # each user names the call by their own UUID (as the modern push preset does)
    assert env.of(ALICE, "call.ended")[0].data["callUUID"] == call_uuid(ALICE, result.call_id)
    assert ringing.data["callUUID"] == call_uuid(CAROL, result.call_id)


async def test_new_voicemail_then_marked_read_through_the_proxy(events_env: EventsEnv) -> None:
    env = events_env
    await env.sign_in(ALICE)
    mail_id = str((await env.post("/voicemails", {"ext": EXT[ALICE], "from": CALLER, "name": CALLER_NAME,
                                                   "duration": 7}))["mailId"])
    new = await env.wait_for(ALICE, "voicemail.new")
    assert (new.data["mailId"], new.data["from"], new.data["fromName"], new.data["duration"], new.data["mediaType"]) \
        == (mail_id, CALLER, CALLER_NAME, 7, "VoiceMail")
    env.bus.voicemail_read(ALICE, mail_id)
    env.bus.voicemail_read(ALICE, mail_id)  # marked read twice: one event
    read = await env.wait_for(ALICE, "voicemail.read")
    await env.settle(ALICE)

    assert env.types(ALICE) == ["voicemail.new", "voicemail.read"]
    assert read.data == {"mailId": mail_id, "mediaType": "VoiceMail"}


async def test_address_book_change_is_contacts_changed(events_env: EventsEnv) -> None:
    env = events_env
    await env.sign_in(ALICE)
    await env.post("/directory", {"ext": "250", "firstName": "Dora", "lastName": "Dunn"})
    added = await env.wait_for(ALICE, "contacts.changed")
    response = await env.control.delete("/directory/250")
    assert response.status_code == 204
    deleted = await env.wait_for(ALICE, "contacts.changed", 2)
    await env.settle(ALICE)

    assert env.types(ALICE) == ["contacts.changed", "contacts.changed"]
    assert added.data["change"] == "add" and added.data["contact"]["firstName"] == "Dora"
    assert added.data["contact"]["ext"] == "250"
    assert deleted.data == {"change": "delete", "userId": added.data["userId"], "contact": None}


async def test_presence_change_is_one_event_and_a_repeat_none(events_env: EventsEnv) -> None:
    env = events_env
    await env.sign_in(ALICE)
    await env.post("/presence", {"ext": EXT[ALICE], "status": "BeRightBack", "note": "lunch"})
    first = await env.wait_for(ALICE, "presence.changed")
    while first.data["status"] != "BeRightBack":  # the own presence sent right after login comes first
        first = await env.wait_for(ALICE, "presence.changed", env.of(ALICE, "presence.changed").index(first) + 2)
    count = len(env.of(ALICE, "presence.changed"))
    await env.post("/presence", {"ext": EXT[ALICE], "status": "BeRightBack", "note": "lunch"})
    await env.settle(ALICE)

    assert first.data["self"] is True and first.data["userId"] == 1001 and first.data["note"] == "lunch"
    # the repeat made nothing; only the barrier's own change followed
    assert len(env.of(ALICE, "presence.changed")) == count + 1
