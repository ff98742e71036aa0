"""Push policy: the compat preset reproduces the original, the modern one pushes only what
CallKit and the user need."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from mxproxy.config import ConfigError
from mxproxy.connectors.base import (
    ConnectionCleared,
    Delivered,
    Diverted,
    Established,
    Held,
    MailIncomingReady,
    Originated,
    RecordingState,
    Retrieved,
)
from mxproxy.eventjson import event_json
from mxproxy.push.policy import PushPolicy, call_uuid
from tests.push.conftest import push_config

EXT = "3095"
RING = Delivered(call_id=21, device_id=EXT, calling_device="3044", called_device=EXT, alerting_device=EXT,
                 local_connection_info="alerting", cause="normal")
ALL = [
    RING,
    Established(call_id=21, device_id=EXT, answering_device=EXT),
    Originated(call_id=22, device_id=EXT, calling_device=EXT, called_device="555"),
    ConnectionCleared(call_id=21, device_id=EXT, releasing_device="3044"),
    Held(call_id=21, device_id=EXT, holding_device=EXT),
    Retrieved(call_id=21, device_id=EXT, retrieving_device=EXT),
    MailIncomingReady(mail_id="117", sender="3044", from_name="Peter Hyde", to=EXT),
    RecordingState(call_id=21, device_id=EXT, available=True, active=True),
]


def test_compat_pushes_every_type_as_voip_with_the_event_json_itself():
    policy = PushPolicy("compat")
    for event in ALL:
        message = policy.message(event, login="alice", ext=EXT)
        assert message is not None and message.kind == "voip"
        assert message.payload == event_json(event)
        assert list(message.payload) == list(event_json(event))


def test_both_presets_keep_the_original_filters():
    for preset in ("compat", "modern"):
        policy = PushPolicy(preset)
        far_end = Delivered(call_id=5, calling_device=EXT, called_device="555", alerting_device="555")
        assert policy.message(far_end, login="alice", ext=EXT) is None
        assert policy.message(MailIncomingReady(mail_id="1", read=True), login="alice", ext=EXT) is None
        assert policy.message(Diverted(call_id=1), login="alice", ext=EXT) is None


def test_modern_rings_and_cancels_the_same_callkit_call():
    policy = PushPolicy("modern")
    before = int(time.time() * 1000)
    ring = policy.message(RING, login="alice", ext=EXT)
    cancel = policy.message(ConnectionCleared(call_id=21, device_id=EXT, releasing_device="3044"),
                            login="alice", ext=EXT)
    assert ring is not None and cancel is not None
    assert (ring.kind, cancel.kind) == ("voip", "voip")
    assert ring.payload["callUUID"] == cancel.payload["callUUID"] == ring.call_uuid == call_uuid("alice", 21)
    assert uuid.UUID(ring.call_uuid).version == 5
    assert ring.payload["sentAt"] >= before
    assert ring.payload["type"] == "Delivered" and cancel.payload["type"] == "ConnectionCleared"
    assert call_uuid("bob", 21) != call_uuid("alice", 21) != call_uuid("alice", 22)


def test_modern_does_not_push_the_end_of_an_answered_call_or_the_chatty_rest():
    policy = PushPolicy("modern")
    assert policy.message(RING, login="alice", ext=EXT) is not None
    for event in ALL[1:6] + ALL[7:]:
        assert policy.message(event, login="alice", ext=EXT) is None, event


def test_modern_turns_new_voicemail_into_a_visible_alert():
    message = PushPolicy("modern").message(ALL[6], login="alice", ext=EXT)
    assert message is not None and message.kind == "alert"
    assert message.payload["aps"] == {"alert": {"title": "New voicemail", "body": "From Peter Hyde (3044)"},
                                      "sound": "default"}
    assert message.payload["type"] == "MailIncoming" and message.payload["mailId"] == "117"


def test_per_type_overrides_apply_on_top_of_a_preset(tmp_path: Path):
    cfg = push_config(tmp_path, push={"preset": "modern", "events": {"ConnectionCleared": "voip", "Delivered": "none"}})
    policy = PushPolicy.from_config(cfg.push)
    assert policy.message(RING, login="alice", ext=EXT) is None
    cleared = policy.message(ConnectionCleared(call_id=99), login="alice", ext=EXT)
    assert cleared is not None and cleared.kind == "voip"  # every clear, not only a ring's
    assert policy.choice("MailIncoming") == "alert"
    compat = PushPolicy("compat", {"MailIncoming": "alert"})
    mail = compat.message(ALL[6], login="alice", ext=EXT)
    assert mail is not None and mail.kind == "alert" and "callUUID" not in mail.payload


def test_bad_policy_config_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="push.preset"):
        push_config(tmp_path, push={"preset": "chatty"})
    with pytest.raises(ConfigError, match="push.events.Delivered"):
        push_config(tmp_path, push={"events": {"Delivered": "loud"}})
    with pytest.raises(ConfigError, match="unknown event type"):
        PushPolicy("compat", {"Diverted": "voip"})
