"""Cluster: events exist on the user's owner only. Two session managers of one PostgreSQL
database (one process, real leases): when the owner hands a user over, its bus closes the user's
subscriptions as "moved" and the new owner's bus carries the user's events from then on."""

from __future__ import annotations

from typing import Any, AsyncIterator

import httpx
import pytest

from mxproxy.config import parse_config
from mxproxy.connectors.base import MXAccount
from mxproxy.connectors.registry import create_connector
from mxproxy.events.bus import EventBus
from mxproxy.events.model import Event
from mxproxy.provisioning import ProvisionedAccount
from mxproxy.sessions import ClusterOptions, Ownership, SessionManager, SessionOptions
from mxproxy.store.postgres import PostgresStore
from tests.cluster.harness import create_database, drop_database
from tests.events.conftest import ALICE, EXT, fixture_users, mx_config
from tests.store.conftest import postgres_dsn
from tests.waiting import eventually

STORE_KEY = "events cluster test key"


class Node:
    """One instance: store, connector, manager with its lease rounds, and its event bus."""

    def __init__(self, name: str, dsn: str) -> None:
        config = parse_config({"apps": {"app": "secret"}, "events": {"enabled": True}})
        self.store = PostgresStore(dsn, STORE_KEY, min_size=1, max_size=4)
        self.connector = create_connector(mx_config())
        self.ownership = Ownership(self.store, ClusterOptions(instance_id=name, url=f"http://{name}.invalid",
                                                              lease_ttl=2.0))
        options = SessionOptions(reconnect_min=0.05, reconnect_max=0.2, jitter=0.0, resume_wait=10.0,
                                 sign_in_wait=10.0, stop_timeout=5.0)
        self.manager = SessionManager(self.connector, self.store, config, ownership=self.ownership, options=options)
        self.bus = EventBus(config.events)
        self.bus.bind(self.manager)
        self.stopped = False

    async def start(self) -> None:
        await self.store.open()
        await self.manager.start()

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            await self.manager.stop()
            self.bus.close()
            await self.connector.aclose()
            await self.store.close()


@pytest.fixture
async def two_nodes(start_simulator: Any) -> AsyncIterator[tuple[Any, Node, Node]]:
    base = postgres_dsn()
    dsn, name = await create_database(base)
    sim = await start_simulator(fixture_users(), control=True)
    a, b = Node("a", dsn), Node("b", dsn)
    try:
        await a.start()
        yield sim, a, b
    finally:
        for node in (b, a):
            await node.stop()
        await drop_database(base, name)


async def test_a_handed_over_user_s_stream_ends_as_moved_and_continues_on_the_new_owner(
    two_nodes: tuple[Any, Node, Node]
) -> None:
    sim, a, b = two_nodes
    user = sim.fixture.user(ALICE)
    await a.manager.sign_in(ProvisionedAccount(login=ALICE, account=MXAccount(
        host="127.0.0.1", port=sim.port, login=ALICE, password=user.password)))
    on_a: list[Event] = []
    reasons: list[str] = []
    a.bus.subscribe(ALICE, lambda e: on_a.append(e) if e.type.startswith("call.") else None,
                    on_close=reasons.append)
    async with httpx.AsyncClient(base_url=sim.control_url) as control:
        first = (await control.post("/calls", json={"to": EXT[ALICE], "from": "5550100"})).json()["callId"]
        await eventually(lambda: [e.type for e in on_a] == ["call.ringing"], "the ring on a")
        await control.post(f"/calls/{first}/hangup")
        await eventually(lambda: [e.type for e in on_a] == ["call.ringing", "call.ended"], "the end on a")

        await b.start()
        on_b: list[Event] = []
        b.bus.subscribe(None, lambda e: on_b.append(e) if e.type.startswith("call.") else None)
        await a.stop()  # graceful: hands alice to b
        assert reasons == ["moved"]
        await eventually(lambda: b.manager.state(ALICE) == "live", "alice runs on b")

        second = (await control.post("/calls", json={"to": EXT[ALICE], "from": "5550101"})).json()["callId"]
        await eventually(lambda: [e.type for e in on_b] == ["call.ringing"], "the ring on b")
        await control.post(f"/calls/{second}/hangup")
        await eventually(lambda: [e.type for e in on_b] == ["call.ringing", "call.ended"], "the end on b")

    assert [e.type for e in on_a] == ["call.ringing", "call.ended"]  # a reported nothing after the move
    assert on_b[0].id > on_a[-1].id  # ids keep increasing across the owner change
    assert b.bus.history(ALICE, on_a[-1].id) is None  # b cannot replay what happened on a: a gap
    kept = b.bus.history(ALICE, on_b[0].id - 1)  # from b's first event on, b replays all
    assert kept is not None and [e for e in kept if e.type.startswith("call.")] == on_b
