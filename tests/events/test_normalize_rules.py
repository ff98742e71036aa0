"""The normaliser's rules on event sequences the simulator does not produce but a real MX may
(repeats, redirections, failures, pick-up elsewhere): one event per real transition."""

from __future__ import annotations

from typing import Any

import pytest

from mxproxy.connectors.base import (
    AddressBookChanged,
    ConnectionCleared,
    Contact,
    Delivered,
    Diverted,
    Established,
    Failed,
    Held,
    MailIncomingReady,
    Originated,
    PresenceChanged,
    Retrieved,
    Transferred,
)
from mxproxy.events.normalize import CALL_TTL, UserNormalizer
from mxproxy.push.policy import call_uuid

EXT, JID, CALLER = "201", 1001, "5550100"
RING = Delivered(call_id=7, device_id=EXT, global_call_id="G7", calling_device=CALLER,
                 calling_display_name="Peter Hyde", called_device=EXT, alerting_device=EXT,
                 alerting_display_name="Alice", local_connection_info="alerting")
ANSWER = Established(call_id=7, device_id=EXT, global_call_id="G7", answering_device=EXT, calling_device=CALLER,
                     called_device=EXT)
HOLD = Held(call_id=7, device_id=EXT, holding_device=EXT)
RESUME = Retrieved(call_id=7, device_id=EXT, retrieving_device=EXT)
HANGUP = ConnectionCleared(call_id=7, device_id=EXT, releasing_device=CALLER, cause="normal")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(events: list[Any], normalizer: UserNormalizer | None = None) -> list[tuple[str, dict[str, Any], str]]:
    normalizer = normalizer or UserNormalizer("alice")
    out = []
    for event in events:
        for kind, data, _, key in normalizer.feed(event, EXT, JID):
            out.append((kind, data, key))
    return out


def kinds(events: list[Any]) -> list[str]:
    return [kind for kind, _, _ in run(events)]


@pytest.mark.parametrize("events, expected", [
    ([RING, RING, ANSWER, ANSWER, HANGUP, HANGUP], ["call.ringing", "call.answered", "call.ended"]),
    ([RING, ANSWER, HOLD, HOLD, RESUME, RESUME, HANGUP],
     ["call.ringing", "call.answered", "call.held", "call.resumed", "call.ended"]),
    ([RING, RESUME, HOLD, HANGUP], ["call.ringing", "call.ended"]),  # nothing to resume or hold while ringing
    ([RING, HANGUP, RING, ANSWER, HANGUP], ["call.ringing", "call.ended"]),  # late repeats of an ended call
    ([HOLD, RESUME, HANGUP], []),  # a call never seen: nothing to report on
], ids=["repeats", "hold-twice", "out-of-state", "after-end", "unknown-call"])
def test_repeated_and_out_of_state_events_make_no_second_event(events: list[Any], expected: list[str]) -> None:
    assert kinds(events) == expected


def test_an_outgoing_server_call_is_one_dialing_and_the_far_ends_ring_and_the_divert_step_are_nothing() -> None:
    out = run([
        Originated(call_id=9, device_id=EXT, calling_device=EXT, called_device="5550199"),
        Diverted(call_id=9, device_id=EXT, diverting_device=EXT, new_destination="5550199"),
        Delivered(call_id=9, device_id=EXT, calling_device=EXT, called_device="5550199", alerting_device="5550199",
                  alerting_display_name="Shop"),
        Established(call_id=9, device_id=EXT, answering_device="5550199", answering_display_name="Shop",
                    calling_device=EXT, called_device="5550199"),
        ConnectionCleared(call_id=9, device_id=EXT, releasing_device=EXT, cause="normal"),
    ])
    assert [k for k, _, _ in out] == ["call.dialing", "call.answered", "call.ended"]
    ended = out[-1][1]
    assert (ended["direction"], ended["remoteNumber"], ended["remoteName"], ended["missed"], ended["endedBy"]) == \
        ("outgoing", "5550199", "Shop", False, "local")


def test_a_ringing_call_diverted_away_ends_missed_with_where_it_went() -> None:
    out = run([RING, Diverted(call_id=7, device_id=EXT, diverting_device=EXT, new_destination="*86",
                              cause="redirected")])
    assert [k for k, _, _ in out] == ["call.ringing", "call.ended"]
    assert {k: out[1][1][k] for k in ("reason", "missed", "divertedTo")} == \
        {"reason": "diverted", "missed": True, "divertedTo": "*86"}


def test_a_ringing_call_picked_up_by_another_device_ends_not_missed() -> None:
    out = run([RING, Established(call_id=7, device_id="205", answering_device="205", calling_device=CALLER,
                                 called_device=EXT)])
    assert [k for k, _, _ in out] == ["call.ringing", "call.ended"]
    assert {k: out[1][1][k] for k in ("reason", "missed", "answeredBy")} == \
        {"reason": "answered-elsewhere", "missed": False, "answeredBy": "205"}


def test_a_failed_call_ends_as_failed() -> None:
    out = run([Originated(call_id=3, device_id=EXT, calling_device=EXT, called_device="999"),
               Failed(call_id=3, device_id=EXT, calling_device=EXT, called_device="999", cause="invalidNumber")])
    assert [(k, d.get("reason"), d.get("cause")) for k, d, _ in out] == \
        [("call.dialing", None, None), ("call.ended", "failed", "invalidNumber")]


@pytest.mark.parametrize("events", [
    [RING, ANSWER, Transferred(call_id=7, device_id=EXT, transferring_device=EXT, transferred_to_device="202"),
     ConnectionCleared(call_id=7, device_id=EXT, releasing_device=EXT, cause="singleStepTransfer")],
    [RING, ANSWER, ConnectionCleared(call_id=7, device_id=EXT, releasing_device=EXT, cause="transfer")],
], ids=["transfered-event", "clear-cause-only"])
def test_a_transfer_is_transferred_then_ended_whether_or_not_the_mx_sent_transfered(events: list[Any]) -> None:
    out = run(events)
    assert [k for k, _, _ in out] == ["call.ringing", "call.answered", "call.transferred", "call.ended"]
    assert out[-1][1]["reason"] == "transferred" and out[2][1]["by"] == "local"


def test_an_answered_call_never_seen_ringing_starts_with_answered() -> None:
    out = run([Established(call_id=12, device_id=EXT, answering_device="202", answering_display_name="Bob",
                           calling_device=EXT, called_device="202")])
    assert [k for k, _, _ in out] == ["call.answered"]
    assert (out[0][1]["direction"], out[0][1]["remoteName"], out[0][1]["answerTime"] is not None) == \
        ("outgoing", "Bob", True)


def test_keys_name_each_transition_the_same_on_two_instances_and_count_repeats_of_a_kind() -> None:
    events = [RING, ANSWER, HOLD, RESUME, HOLD, HANGUP]
    here, there = run(events), run(events, UserNormalizer("alice"))
    uuid = call_uuid("alice", 7)
    assert [key for _, _, key in here] == [key for _, _, key in there] == [
        f"call.ringing:{uuid}:G7:1", f"call.answered:{uuid}:G7:1", f"call.held:{uuid}:G7:1",
        f"call.resumed:{uuid}:G7:1", f"call.held:{uuid}:G7:2", f"call.ended:{uuid}:G7:1"]


def test_a_call_id_the_mx_uses_again_later_is_a_new_call_with_other_keys() -> None:
    clock = Clock()
    normalizer = UserNormalizer("alice", clock=clock)
    first = run([RING, HANGUP, RING], normalizer)  # the repeat at once: a late duplicate
    clock.now += 120
    again = Delivered(call_id=7, device_id=EXT, global_call_id="G8", calling_device="5550177", called_device=EXT,
                      alerting_device=EXT)
    second = run([again], normalizer)
    assert [k for k, _, _ in first] == ["call.ringing", "call.ended"]
    assert [k for k, _, _ in second] == ["call.ringing"] and second[0][1]["remoteNumber"] == "5550177"
    assert second[0][2] != first[0][2]


def test_a_call_whose_end_never_came_is_forgotten_after_the_ttl() -> None:
    clock = Clock()
    normalizer = UserNormalizer("alice", clock=clock)
    assert [k for k, _, _ in run([RING], normalizer)] == ["call.ringing"]
    clock.now += CALL_TTL + 1
    assert run([HANGUP], normalizer) == []
    assert not normalizer.calls


def test_mail_is_new_once_and_read_once() -> None:
    mail = MailIncomingReady(mail_id="117", sender=CALLER, from_name="Peter Hyde", to=EXT, duration=7,
                             received=1502565440)
    read = MailIncomingReady(mail_id="117", sender=CALLER, to=EXT, read=True)
    normalizer = UserNormalizer("alice")
    out = run([mail, mail, read, read], normalizer)
    assert [k for k, _, _ in out] == ["voicemail.new", "voicemail.read"]
    assert out[0][1]["received"] == "2017-08-12T19:17:20.000Z"
    assert [key for _, _, key in out] == ["voicemail.new:alice:VoiceMail:117", "voicemail.read:alice:VoiceMail:117"]
    assert normalizer.mail_read("117", "VoiceMail", 0.0) == []  # already read
    assert [k for k, *_ in normalizer.mail_read("118", "Recording", 0.0)] == ["voicemail.read"]


def test_presence_repeats_are_nothing_and_other_users_presence_is_not_self() -> None:
    out = run([
        PresenceChanged(user_id=0, status="Available"),
        PresenceChanged(user_id=0, status="Available"),  # resent after a reconnect
        PresenceChanged(user_id=JID, status="Available"),  # the same user named by JID
        PresenceChanged(user_id=0, status="Available", mx_status="USER_HAS_RINGING_CALL|USER_ACCEPTS_IM"),
        PresenceChanged(user_id=1002, status="BeRightBack", note="lunch"),
    ])
    assert [(d["userId"], d["self"], d["mxStatus"]) for _, d, _ in out] == [
        (JID, True, []), (JID, True, ["USER_HAS_RINGING_CALL", "USER_ACCEPTS_IM"]), (1002, False, [])]


def test_the_same_address_book_change_again_at_once_is_one_event() -> None:
    clock = Clock()
    normalizer = UserNormalizer("alice", clock=clock)
    change = AddressBookChanged(kind="update", user_id=1004, contact=Contact(jid=1004, first_name="Dora", ext="250"))
    assert [k for k, _, _ in run([change, change], normalizer)] == ["contacts.changed"]
    clock.now += 60
    assert [k for k, _, _ in run([change], normalizer)] == ["contacts.changed"]  # later: a new change
