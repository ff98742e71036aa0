"""Address-book change notifications: ``MonitorStartAb`` after login and the ``Ab*UserEvent``s
(spec §4.1, §5.9) as typed ``AddressBookChanged`` events — from raw frames of a scripted peer and
from the simulator."""

from __future__ import annotations

import logging

import pytest

from mxproxy.config import ConfigError, parse_config
from mxproxy.connectors.base import AddressBookChanged, Contact
from mxproxy.simulator import Quirks
from tests.connectors.zultys.conftest import (
    EventReader,
    RawRequest,
    ScriptedConnection,
    small_world,
)
from tests.waiting import eventually

ADD = ('<AbAddUserEvent><abentry jid="43884851428118509" presence="Available" presenceNote="in">'
       "<firstName>Peter</firstName><lastName>Hyde</lastName><businessPhone>3044</businessPhone>"
       "<homePhone>+1-202-555-0104</homePhone><cellPhone>+1-512-555-0136</cellPhone>"
       "<email>peterh@xyzrd.com</email><homeSystem>0</homeSystem><did>15125550136</did>"
       "</abentry></AbAddUserEvent>")
UPDATE = ('<AbUpdateUserEvent><abentry jid="43884851428118509"><firstName>Pete</firstName>'
          "<lastName>Hyde</lastName><businessPhone>3045</businessPhone></abentry></AbUpdateUserEvent>")
DELETE = "<AbDeleteUserEvent><userId>43884851428118509</userId></AbDeleteUserEvent>"


def _answering_ab(reply: str, *events: str):  # type: ignore[no-untyped-def]
    """A scripted-peer handler: ``reply`` to MonitorStartAb (same invoke id), then ``events`` on 9999."""

    async def handler(conn: ScriptedConnection, request: RawRequest) -> None:
        if request.root.tag == "MonitorStartAb":
            conn.send(request.invoke_id, reply)
            for event in events:
                conn.send(9999, event)
        elif request.root.tag == "GetServiceList":
            conn.send(request.invoke_id, "<GetServiceListResponse></GetServiceListResponse>")

    return handler


async def test_login_sends_monitor_start_ab_and_raw_ab_events_become_typed_events(scripted_mx, connect) -> None:
    mx = await scripted_mx(_answering_ab("<MonitorStartAbResponse></MonitorStartAbResponse>", ADD, UPDATE, DELETE))
    session = await connect(mx.port)
    events = EventReader(session)
    added = await events.next(AddressBookChanged)
    assert (added.kind, added.user_id) == ("add", 43884851428118509)
    assert added.contact == Contact(
        jid=43884851428118509, first_name="Peter", last_name="Hyde", ext="3044", home_phone="+1-202-555-0104",
        cell_phone="+1-512-555-0136", email="peterh@xyzrd.com", did="15125550136", presence="Available",
        presence_note="in")
    updated = await events.next(AddressBookChanged)
    assert (updated.kind, updated.user_id, updated.contact.first_name, updated.contact.ext) == (
        "update", 43884851428118509, "Pete", "3045")
    deleted = await events.next(AddressBookChanged)
    assert (deleted.kind, deleted.user_id, deleted.contact) == ("delete", 43884851428118509, None)
    ab = [r for r in mx.received if r.root.tag == "MonitorStartAb"]
    assert len(ab) == 1 and ab[0].payload == b"<MonitorStartAb></MonitorStartAb>"
    assert mx.names()[:2] == ["loginRequest", "MonitorStartAb"]  # right after the login
    await eventually(lambda: session.address_book_events is True, "the MonitorStartAb reply was seen")


async def test_ab_event_without_entry_is_still_a_change(scripted_mx, connect) -> None:
    mx = await scripted_mx(_answering_ab("<MonitorStartAbResponse/>", "<AbUpdateUserEvent/>"))
    session = await connect(mx.port)
    event = await EventReader(session).next(AddressBookChanged)
    assert (event.kind, event.user_id, event.contact) == ("update", 0, None)


async def test_refused_monitor_start_ab_is_logged_and_the_session_goes_on(scripted_mx, connect, caplog) -> None:
    caplog.set_level(logging.INFO, logger="mxproxy.connectors.zultys")
    mx = await scripted_mx(_answering_ab(
        "<CSTAErrorCode><operation>invalidFeature</operation></CSTAErrorCode>"))
    session = await connect(mx.port)
    await eventually(lambda: session.address_book_events is False, "the refusal was seen")
    assert session.is_alive
    assert await session.services() == []  # the session still answers commands
    assert any("refused MonitorStartAb" in r.getMessage() and "invalidFeature" in r.getMessage()
               for r in caplog.records)


async def test_unanswered_monitor_start_ab_does_not_delay_or_fail_the_login(scripted_mx, connect) -> None:
    mx = await scripted_mx(None)  # answers the login only
    session = await connect(mx.port, response_timeout=0.3)
    assert session.is_alive and session.login_info.extension == "201"
    await eventually(lambda: "MonitorStartAb" in mx.names(), "MonitorStartAb was sent")
    await eventually(lambda: not session.client._pending, "the unanswered MonitorStartAb was given up")
    assert session.address_book_events is None and session.is_alive


async def test_address_book_events_option_off_sends_no_monitor_start_ab(scripted_mx, connect) -> None:
    mx = await scripted_mx(_answering_ab("<MonitorStartAbResponse/>"))
    session = await connect(mx.port, options={"addressBookEvents": False})
    assert await session.services() == []
    assert "MonitorStartAb" not in mx.names()
    assert session.address_book_events is None


def test_address_book_events_option_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match="mx.addressBookEvents: expected true or false"):
        parse_config({"apps": {"c": "s"}, "mx": {"addressBookEvents": "yes"}})


async def test_simulator_directory_changes_arrive_as_typed_events(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    await eventually(lambda: alice.address_book_events is True, "MonitorStartAb accepted")
    events = EventReader(alice)
    entry = await sim.add_directory_entry("250", jid=777, first_name="Dora", last_name="New", email="dora@example.org")
    added = await events.next(AddressBookChanged)
    assert (added.kind, added.user_id) == ("add", 777)
    assert (added.contact.ext, added.contact.first_name, added.contact.last_name, added.contact.email) == (
        "250", "Dora", "New", "dora@example.org")
    await sim.update_directory_entry("202", "212", last_name="Brown")  # bob: a user, renumbered
    updated = await events.next(AddressBookChanged)
    assert (updated.kind, updated.user_id, updated.contact.ext, updated.contact.last_name) == (
        "update", 43884851147406146, "212", "Brown")
    await sim.delete_directory_entry(entry.ext)
    deleted = await events.next(AddressBookChanged)
    assert (deleted.kind, deleted.user_id, deleted.contact) == ("delete", 777, None)
    assert [c.ext for c in await alice.directory()] == ["201", "212", "203"]


async def test_simulator_without_address_book_events_refuses_and_sends_none(start_simulator, connect) -> None:
    sim = await start_simulator(small_world(), quirks=Quirks(address_book_events=False))
    alice = await connect(sim)
    await eventually(lambda: alice.address_book_events is False, "MonitorStartAb refused")
    events = EventReader(alice)
    await sim.add_directory_entry("250", first_name="Dora")
    await sim.set_presence("202", "BeRightBack")  # a later event: nothing came before it
    first = await events.next()
    assert not isinstance(first, AddressBookChanged)
