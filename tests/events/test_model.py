"""The event envelope: what SSE ``data:`` and webhook bodies carry."""

from __future__ import annotations

import json

from mxproxy.events.model import Event


def test_envelope_has_id_type_time_user_data_and_json_bytes_is_cached() -> None:
    event = Event(id=1_764_588_000_123_456, type="call.ringing", user="alice", time=1_764_588_000.1234,
                  data={"callId": 7, "remoteName": "Zoë"})
    assert event.envelope() == {"id": 1_764_588_000_123_456, "type": "call.ringing",
                                "time": "2025-12-01T11:20:00.123Z", "user": "alice",
                                "data": {"callId": 7, "remoteName": "Zoë"}}
    body = event.json_bytes()
    assert json.loads(body) == event.envelope()
    assert b" " not in body and "Zoë".encode() in body  # compact, UTF-8
    assert event.json_bytes() is body


def test_envelope_is_a_copy_receivers_cannot_change_the_event_through() -> None:
    event = Event(id=1, type="voicemail.read", user="bob", time=0.0, data={"mailId": "5"})
    event.envelope()["data"]["mailId"] = "6"
    assert event.data == {"mailId": "5"} and json.loads(event.json_bytes())["data"] == {"mailId": "5"}
