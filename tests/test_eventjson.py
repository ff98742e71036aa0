"""MX Proxy 2.3 event JSON: keys, key order, types and omit-when-empty rules of spec §5."""

from __future__ import annotations

import json

import pytest

from mxproxy.connectors.base import (
    AddressBookChanged,
    Cad,
    Contact,
    ConnectionCleared,
    Delivered,
    Diverted,
    Established,
    Held,
    MailIncomingReady,
    Originated,
    PresenceChanged,
    RecordingState,
    Retrieved,
)
from mxproxy.eventjson import delivered_concerns, event_json, event_type

T = 1700000000.75


def test_delivered_keys_in_order_with_optional_flags():
    e = Delivered(call_id=21, device_id="3095", global_call_id="2809269720623105293", calling_device="3044",
                  called_device="3095", alerting_device="3095", local_connection_info="alerting", cause="normal",
                  call_type_flags=170917889, cmds_allowed=272, calling_display_name="Peter", received_at=T)
    assert list(event_json(e).items()) == [
        ("type", "Delivered"), ("callId", 21), ("deviceId", "3095"), ("globalCallId", "2809269720623105293"),
        ("callingDevice", "3044"), ("calledDevice", "3095"), ("alertingDevice", "3095"),
        ("lastRedirectionDevice", ""), ("localConnectionInfo", "alerting"), ("cause", "normal"),
        ("callTypeFlags", 170917889), ("timestamp", 1700000000),
    ]
    assert "callTypeFlags" not in event_json(Delivered(call_id=1))


def test_established_keys_in_order_with_cads():
    e = Established(call_id=21, device_id="3095", global_call_id="9", answering_device="3095",
                    answering_display_name="Me", calling_device="3044", calling_display_name="Peter",
                    called_device="3095", last_redirection_device="3000", cause="normal", call_type_flags=3,
                    cmds_allowed=376, cads=(Cad("__FIRST_CALL_ID__", "string", "631UN"), Cad("empty", "string", "")),
                    received_at=T)
    out = event_json(e)
    assert list(out) == ["type", "callId", "deviceId", "globalCallId", "answeringDevice", "answeringDisplayName",
                         "callingDevice", "calledDevice", "lastRedirectionDevice", "callingDisplayName", "cause",
                         "callTypeFlags", "cmdsAllowed", "cads", "timestamp"]
    assert out["type"] == "Established"
    assert out["cads"] == [{"name": "__FIRST_CALL_ID__", "type": "string", "value": "631UN"},
                           {"name": "empty", "type": "string"}]
    bare = event_json(Established(call_id=1))
    assert list(bare) == ["type", "callId", "deviceId", "globalCallId", "answeringDevice", "answeringDisplayName",
                          "callingDevice", "calledDevice", "callingDisplayName", "cause", "timestamp"]


def test_originated_keys():
    out = event_json(Originated(call_id=5, device_id="3095", calling_device="3095", called_device="18005551234",
                                cause="normal", cmds_allowed=8, local_connection_info="initializing", received_at=T))
    assert list(out.items()) == [("type", "Originated"), ("callId", 5), ("deviceId", "3095"),
                                 ("callingDevice", "3095"), ("calledDevice", "18005551234"), ("cause", "normal"),
                                 ("cmdsAllowed", 8), ("timestamp", 1700000000)]


def test_connection_cleared_keys_and_call_control_form():
    e = ConnectionCleared(call_id=21, device_id="3095", releasing_device="3044", cause="normal", received_at=T)
    assert json.dumps(event_json(e)) == (
        '{"type": "ConnectionCleared", "callId": 21, "deviceId": "3095", "releasingDevice": "3044", '
        '"cause": "normal", "timestamp": 1700000000}'
    )
    assert event_json(e, with_meta=False) == {"type": "", "callId": 21, "deviceId": "3095",
                                              "releasingDevice": "3044", "cause": "normal", "timestamp": 0}


@pytest.mark.parametrize(("event", "type_name"), [
    (Held(call_id=7, device_id="3095", holding_device="3095", cause="normal", call_type_flags=1), "HeldEvent"),
    (Retrieved(call_id=7, device_id="3095", retrieving_device="3095", cause="normal", call_type_flags=1),
     "RetrievedEvent"),
])
def test_held_and_retrieved_keep_the_suffix_and_the_misnamed_device(event, type_name):
    out = event_json(event)
    assert list(out) == ["type", "callId", "deviceId", "releasingDevice", "cause", "callTypeFlags", "timestamp"]
    assert out["type"] == type_name and out["releasingDevice"] == "3095"


def test_mail_incoming_keys_with_numeric_owner_id_and_optional_note():
    e = MailIncomingReady(mail_id="117", media_type="VoiceMail", sender="3044", from_name="Peter Hyde",
                          caller_name="Peter Hyde", to="3095", owner_id=43884851147406145, owner_type="user",
                          gcid="63022-00-0000D-47A", received=1502565440, duration=7, note="call back",
                          received_at=T)
    out = event_json(e)
    assert list(out.items()) == [
        ("type", "MailIncoming"), ("from", "3044"), ("fromName", "Peter Hyde"), ("callerName", "Peter Hyde"),
        ("to", "3095"), ("ownerId", 43884851147406145), ("ownerType", "user"), ("mailId", "117"),
        ("mediaType", "VoiceMail"), ("gcid", "63022-00-0000D-47A"), ("received", 1502565440), ("duration", 7),
        ("note", "call back"), ("timestamp", 1700000000),
    ]
    assert "note" not in event_json(MailIncomingReady(mail_id="1"))


def test_recording_state_keys():
    out = event_json(RecordingState(call_id=18, device_id="199", available=True, active=False, received_at=T))
    assert list(out.items()) == [("type", "RecordingState"), ("callId", 18), ("deviceId", "199"),
                                 ("available", True), ("active", False), ("timestamp", 1700000000)]


def test_events_the_original_never_pushed_have_no_json():
    assert event_json(Diverted(call_id=1)) is None
    assert event_json(PresenceChanged(status="Available")) is None


@pytest.mark.parametrize("event", [
    AddressBookChanged(kind="add", user_id=7, contact=Contact(jid=7, ext="250")),
    AddressBookChanged(kind="delete", user_id=7),
])
def test_address_book_changes_are_never_pushed(event):
    assert event_type(event) is None and event_json(event) is None


def test_delivered_filter_matches_called_or_alerting_device():
    assert delivered_concerns(Delivered(called_device="3095", alerting_device="3044"), "3095")
    assert delivered_concerns(Delivered(called_device="*86", alerting_device="3095"), "3095")
    assert not delivered_concerns(Delivered(calling_device="3095", called_device="555", alerting_device="555"), "3095")
