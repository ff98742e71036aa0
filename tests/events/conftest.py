"""The event bus wired to a real SessionManager, the real Zultys connector, SQLite and the MX
simulator driven through its control API (``events_env``)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import httpx
import pytest

from mxproxy.config import EventsConfig, MXConfig, parse_config
from mxproxy.connectors.base import MXAccount
from mxproxy.connectors.registry import create_connector
from mxproxy.events.bus import EventBus, Subscription
from mxproxy.events.model import Event
from mxproxy.provisioning import ProvisionedAccount
from mxproxy.sessions import SessionManager, SessionOptions, UserSession
from mxproxy.simulator import Fixture, SimUser
from mxproxy.store.base import Store
from tests.waiting import eventually

ALICE, BOB, CAROL = "alice", "bob", "carol"
EXT = {ALICE: "201", BOB: "202", CAROL: "203"}
CALLER, CALLER_NAME = "5550100", "Peter Hyde"

_barriers = itertools.count(1)


def fixture_users() -> Fixture:
    return Fixture(users=[
        SimUser(login=ALICE, password="pw-a", ext=EXT[ALICE], jid=1001, first_name="Alice", last_name="Archer"),
        SimUser(login=BOB, password="pw-b", ext=EXT[BOB], jid=1002, first_name="Bob", last_name="Baker"),
        SimUser(login=CAROL, password="pw-c", ext=EXT[CAROL], jid=1003, first_name="Carol", last_name="Cole"),
    ])


@dataclass
class EventsEnv:
    sim: Any
    manager: SessionManager
    bus: EventBus
    control: httpx.AsyncClient
    seen: dict[str, list[Event]] = field(default_factory=dict)
    subs: dict[str, Subscription] = field(default_factory=dict)

    async def sign_in(self, login: str) -> UserSession:
        password = self.sim.fixture.user(login).password
        view = await self.manager.sign_in(ProvisionedAccount(
            login=login, account=MXAccount(host="127.0.0.1", port=self.sim.port, login=login, password=password)))
        if login not in self.subs:
            self.seen[login] = []
            self.subs[login] = self.bus.subscribe(login, self.seen[login].append)
        return view

    def session(self, login: str) -> UserSession:
        return self.manager.get(login)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.control.post(path, json=body or {})
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    async def incoming(self, login: str, number: str = CALLER, name: str = CALLER_NAME) -> int:
        return int((await self.post("/calls", {"to": EXT[login], "from": number, "name": name}))["callId"])

    def types(self, login: str) -> list[str]:
        return [e.type for e in self.seen[login] if e.type != "presence.changed"]

    def of(self, login: str, kind: str) -> list[Event]:
        return [e for e in self.seen[login] if e.type == kind]

    async def wait_for(self, login: str, kind: str, count: int = 1) -> Event:
        await eventually(lambda: len(self.of(login, kind)) >= count, f"{count} x {kind} for {login}")
        return self.of(login, kind)[count - 1]

    async def settle(self, *logins: str) -> None:
        """Everything the MX sent before now has been normalised: a presence change of each
        user goes out after it on the same connection, so once its event is here so is the rest."""
        for login in logins:
            note = f"barrier {next(_barriers)}"
            await self.post("/presence", {"ext": EXT[login], "status": "Available", "note": note})
            await eventually(lambda: any(e.type == "presence.changed" and e.data.get("note") == note
                                         for e in self.seen[login]), f"barrier of {login}")


def mx_config() -> MXConfig:
    return MXConfig(connect_timeout=3.0, response_timeout=3.0, keepalive=30.0, read_deadline=90.0)


@pytest.fixture
async def events_env(start_simulator: Any, store: Store) -> AsyncIterator[EventsEnv]:
    sim = await start_simulator(fixture_users(), control=True)
    connector = create_connector(mx_config())
    config = parse_config({"apps": {"app": "secret"}, "events": {"enabled": True}})
    manager = SessionManager(connector, store, config, options=SessionOptions(
        reconnect_min=0.05, reconnect_max=0.2, jitter=0.0, resume_wait=10.0, sign_in_wait=10.0, stop_timeout=5.0))
    bus = EventBus(config.events)
    bus.bind(manager)
    async with httpx.AsyncClient(base_url=sim.control_url, timeout=10.0) as control:
        env = EventsEnv(sim=sim, manager=manager, bus=bus, control=control)
        try:
            yield env
        finally:
            await manager.stop()
            bus.close()
            await connector.aclose()


__all__ = ["ALICE", "BOB", "CALLER", "CALLER_NAME", "CAROL", "EXT", "EventsEnv", "EventsConfig"]


async def every_type(env: EventsEnv) -> list[Event]:
    """A session of alice that produces every event type at least once; her events."""
    view = await env.sign_in(ALICE)
    await env.sign_in(BOB)
    call_id = await env.incoming(ALICE)
    await env.wait_for(ALICE, "call.ringing")
    await view.mx.answer_call(call_id, EXT[ALICE])
    await env.wait_for(ALICE, "call.answered")
    await view.mx.hold_call(call_id, EXT[ALICE])
    await env.wait_for(ALICE, "call.held")
    await view.mx.retrieve_call(call_id, EXT[ALICE])
    await env.wait_for(ALICE, "call.resumed")
    await view.mx.transfer_call(call_id, EXT[ALICE], EXT[BOB])
    await env.wait_for(ALICE, "call.ended")
    made = await view.mx.make_call(EXT[ALICE], "5550199")
    await env.wait_for(ALICE, "call.dialing")
    await env.post(f"/calls/{made.call_id}/answer")
    await env.post(f"/calls/{made.call_id}/hangup")
    await env.wait_for(ALICE, "call.ended", 2)
    mail = await env.post("/voicemails", {"ext": EXT[ALICE], "from": CALLER, "name": CALLER_NAME, "duration": 7})
    await env.wait_for(ALICE, "voicemail.new")
    env.bus.voicemail_read(ALICE, str(mail["mailId"]))
    await env.post("/directory", {"ext": "250", "firstName": "Dora", "lastName": "Dunn"})
    await env.wait_for(ALICE, "contacts.changed")
    await env.settle(ALICE)
    return list(env.seen[ALICE])
