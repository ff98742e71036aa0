"""The event bus: numbering, bounded history with gap detection, subscriptions and their close
reasons, and listening to the MX sessions only while someone needs events."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mxproxy.config import EventsConfig
from mxproxy.events.bus import EventBus
from mxproxy.events.model import Event
from tests.events.conftest import ALICE, BOB, EventsEnv
from tests.waiting import eventually


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def bus_with(size: int = 200, age: float = 600.0, clock: Clock | None = None) -> EventBus:
    return EventBus(EventsConfig(enabled=True, history_size=size, history_age=age), clock=clock or Clock())


def publish(bus: EventBus, user: str, n: int, first: int = 1) -> list[Event]:
    """``n`` events of ``user`` (marking mails read is the one event the proxy itself causes)."""
    seen: list[Event] = []
    sub = bus.subscribe(user, seen.append)
    for mail in range(first, first + n):
        bus.voicemail_read(user, str(mail))
    sub.close()
    return seen


def test_history_returns_exactly_the_events_after_an_id() -> None:
    bus = bus_with()
    events = publish(bus, ALICE, 5)
    assert [e.id for e in events] == sorted({e.id for e in events})
    assert bus.history(ALICE, events[1].id) == events[2:]
    assert bus.history(ALICE, events[-1].id) == []
    assert bus.last_id(ALICE) == events[-1].id
    assert bus.history(BOB, events[-1].id) == []  # nothing of bob, and nothing missed


@pytest.mark.parametrize("size", [0, 1, 3])
def test_history_keeps_history_size_events_and_older_ids_are_a_gap(size: int) -> None:
    bus = bus_with(size=size)
    events = publish(bus, ALICE, 6)
    kept = events[len(events) - size:] if size else []
    # the newest id not kept: from there on everything is there
    boundary = events[len(events) - size - 1].id
    assert bus.history(ALICE, boundary) == kept
    assert bus.history(ALICE, boundary - 1) is None
    assert bus.history(ALICE, events[0].id) is None


def test_history_drops_events_older_than_history_age_and_asking_for_them_is_a_gap() -> None:
    clock = Clock()
    bus = bus_with(age=60.0, clock=clock)
    old = publish(bus, ALICE, 2)
    clock.now += 45
    new = publish(bus, ALICE, 2, first=10)
    clock.now += 30  # the first two are 75 s old, the others 30 s
    assert bus.history(ALICE, old[-1].id) == new
    assert bus.history(ALICE, old[0].id) is None


def test_history_from_before_the_bus_watched_the_user_is_a_gap() -> None:
    bus = bus_with()
    events = publish(bus, ALICE, 1)
    assert bus.history(ALICE, events[0].id - 10_000_000) is None  # 10 s before: unknown here
    fresh = bus_with()
    assert fresh.history(ALICE, events[0].id) is None  # another instance's id from before it started


def test_every_subscriber_gets_each_event_once_even_when_one_sink_raises(caplog: pytest.LogCaptureFixture) -> None:
    bus = bus_with()
    mine: list[Event] = []
    everyone: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("a sink that breaks the rules")

    bus.subscribe(ALICE, broken)
    bus.subscribe(ALICE, mine.append)
    bus.subscribe(None, everyone.append)
    with caplog.at_level(logging.ERROR, logger="mxproxy.events"):
        bus.voicemail_read(ALICE, "1")
        bus.voicemail_read(BOB, "1")
    assert [e.user for e in mine] == [ALICE]
    assert [e.user for e in everyone] == [ALICE, BOB]
    assert bus.sink_errors == 1 and "event sink failed for alice" in caplog.text


def test_a_closed_subscription_gets_nothing_more() -> None:
    bus = bus_with()
    seen: list[Event] = []
    sub = bus.subscribe(ALICE, seen.append)
    bus.voicemail_read(ALICE, "1")
    sub.close()
    bus.voicemail_read(ALICE, "2")
    assert len(seen) == 1 and sub.closed_reason == "closed" and bus.subscribers() == 0


# -- with the real sessions ---------------------------------------------------------------------


def closes(env: EventsEnv, user: str | None) -> tuple[Any, list[str]]:
    reasons: list[str] = []
    return env.bus.subscribe(user, lambda e: None, on_close=reasons.append), reasons


@pytest.mark.parametrize("how, reason", [
    ("logout", "signed-out"),
    ("drop", "signed-out"),
    ("release", "moved"),
    ("stop", "shutdown"),
])
async def test_the_bus_closes_a_users_subscriptions_when_this_instance_stops_running_them(
    events_env: EventsEnv, how: str, reason: str
) -> None:
    env = events_env
    await env.sign_in(ALICE)
    await env.sign_in(BOB)
    await env.incoming(ALICE)
    ringing = await env.wait_for(ALICE, "call.ringing")
    alice_sub, alice_reasons = closes(env, ALICE)
    bob_sub, bob_reasons = closes(env, BOB)
    all_sub, all_reasons = closes(env, None)
    if how == "logout":
        await env.manager.logout(ALICE)
    elif how == "drop":
        await env.manager.drop(ALICE)
    elif how == "release":
        await env.manager.release_users([ALICE])  # what a lost or moved lease does
    else:
        await env.manager.stop()
    assert alice_reasons == [reason] and alice_sub.closed_reason == reason
    assert env.subs[ALICE].closed_reason == reason
    assert env.bus.history(ALICE, ringing.id - 1) is None  # its history went with it
    if how == "stop":
        assert bob_reasons == ["shutdown"]
    else:
        assert bob_reasons == [] and bob_sub.closed_reason is None and env.bus.subscribers(BOB) == 2
    assert all_reasons == [] and all_sub.closed_reason is None  # "every user" stays


async def test_a_rejected_stored_password_closes_the_users_subscriptions_as_needs_reauth(
    events_env: EventsEnv
) -> None:
    env = events_env
    await env.sign_in(ALICE)
    sub, reasons = closes(env, ALICE)
    env.sim.fixture.user(ALICE).password = "changed-on-the-mx"
    await env.post(f"/users/{ALICE}/drop")  # the session dies; the reconnect is refused
    await eventually(lambda: reasons, "the subscription closed")
    assert reasons == ["needs-reauth"] and sub.closed_reason == "needs-reauth"


async def test_call_state_survives_a_reconnect_of_the_mx_session(events_env: EventsEnv) -> None:
    env = events_env
    await env.sign_in(ALICE)
    call_id = await env.incoming(ALICE)
    await env.wait_for(ALICE, "call.ringing")
    sessions = (await env.post(f"/users/{ALICE}/drop"))["sessions"]
    assert sessions
    await eventually(lambda: env.manager.state(ALICE) == "live" and env.session(ALICE).mx.is_alive
                     and any(s.active and s.login == ALICE and s.monitors for s in env.sim.sessions()),
                     "alice reconnected")
    await env.post(f"/calls/{call_id}/answer")
    await env.post(f"/calls/{call_id}/hangup")
    ended = await env.wait_for(ALICE, "call.ended")
    await env.settle(ALICE)
    assert env.types(ALICE) == ["call.ringing", "call.answered", "call.ended"]
    assert ended.data["missed"] is False


async def test_the_bus_listens_to_the_mx_sessions_only_while_someone_needs_events(events_env: EventsEnv) -> None:
    env = events_env
    manager = env.manager
    quiet = EventBus(EventsConfig())  # [events] as an unchanged config has it
    quiet.bind(manager)
    try:
        assert not quiet.attached and quiet._on_mx_event not in manager._listeners
        await env.sign_in(ALICE)
        await env.incoming(ALICE)
        await env.wait_for(ALICE, "call.ringing")  # (seen by the enabled bus of the harness)
        assert quiet.history(ALICE, 0) is None and quiet.last_id(ALICE) is None
        sub = quiet.subscribe(ALICE, lambda e: None)  # an open subscription needs events
        assert quiet.attached and quiet._on_mx_event in manager._listeners
        sub.close()
        assert not quiet.attached and quiet._on_mx_event not in manager._listeners
        quiet.require("sse")  # what [sse] enabled does at wiring
        assert quiet.attached and quiet.enabled
    finally:
        quiet.unbind()
    assert quiet._on_mx_event not in manager._listeners


def test_an_idle_users_expired_history_is_emptied_when_others_publish() -> None:
    clock = Clock()
    bus = bus_with(age=60.0, clock=clock)
    old = publish(bus, ALICE, 3)
    clock.now += 61
    publish(bus, BOB, 1)  # alice publishes nothing more; her events are past historyAge
    assert not bus._users[ALICE].history and ALICE not in bus._recent
    assert bus.history(ALICE, old[-1].id) == [] and bus.history(ALICE, old[0].id) is None
