"""The event envelope: what SSE ``data:`` and webhook bodies carry."""

from __future__ import annotations

import json

import pytest

from mxproxy.events.model import Event, rfc3339


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


@pytest.mark.parametrize("seconds, text", [
    (0.0, "1970-01-01T00:00:00.000Z"),
    (1.9995, "1970-01-01T00:00:01.999Z"),
    (1_764_588_000.5, "2025-12-01T11:20:00.500Z"),
    (1_764_588_001.25, "2025-12-01T11:20:01.250Z"),  # the next second after a cached one
    (1_764_588_000.007, "2025-12-01T11:20:00.007Z"),  # and back
    (1_502_565_440, "2017-08-12T19:17:20.000Z"),
])
def test_rfc3339_renders_utc_with_milliseconds(seconds: float, text: str) -> None:
    assert rfc3339(seconds) == text


def test_rfc3339_agrees_with_datetime_on_any_instant() -> None:
    import datetime as dt
    import random

    rng = random.Random(13)
    for _ in range(20_000):
        seconds = rng.uniform(-1e5, 4e9)
        if rng.random() < 0.3:
            seconds = round(seconds, 3)
        when = dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
        assert rfc3339(seconds) == when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z", seconds
