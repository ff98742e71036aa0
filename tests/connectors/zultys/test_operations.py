"""Every operation of the MXSession contract against the simulator, over real TLS on loopback."""

from __future__ import annotations

import pytest

from mxproxy.connectors.base import (
    CallMode,
    Conference,
    ConnectionCleared,
    Held,
    PresenceChanged,
    Retrieved,
)
from mxproxy.connectors.errors import CSTAError, MXBadRequest
from mxproxy.connectors.registry import create_connector
from mxproxy.connectors.zultys import ZultysConnector
from mxproxy.simulator import Conference as SimConference
from mxproxy.simulator import Service as SimService
from mxproxy.simulator.quirks import PROFILES
from tests.connectors.zultys.conftest import FAST, EventReader, small_world

pytestmark = pytest.mark.profiles


def test_registry_builds_the_zultys_connector() -> None:
    assert isinstance(create_connector(FAST), ZultysConnector)


async def test_login_exposes_every_loginresponce_attribute(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    session = await connect(sim)
    info = session.login_info
    assert (info.server_id, info.extension, info.user_id, info.api_version) == ("63022", "201", 43884851147406145, 11)
    assert info.softphone_password == sim.fixture.user("alice").soft_phone_pwd
    assert info.attributes["proto"] == "TLS" and info.attributes["mxport"] == "5061" and "mxCapab" in info.attributes
    assert session.is_alive


async def test_monitor_start_is_verified_and_cached_and_stop_removes_it(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    session = await connect(sim)
    monitor = await session.start_monitor()
    assert monitor > 0 and await session.start_monitor() == monitor
    live = [s for s in sim.sessions() if s.login == "alice" and s.active][0]
    assert live.monitors == {monitor: "201"} and live.commands.count("MonitorStart") == 1
    await session.stop_monitor(monitor)
    assert [s for s in sim.sessions() if s.login == "alice" and s.active][0].monitors == {}


async def test_monitoring_another_users_extension_is_a_csta_error(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    session = await connect(sim)
    with pytest.raises(CSTAError) as err:
        await session.start_monitor("202")
    assert err.value.text == "privilegeViolationOnSpecifiedDevice"
    assert session.is_alive


async def test_services_list(start_simulator, connect) -> None:
    fx = small_world()
    fx.services = [SimService(id="3458764513956069980", name="voicemail", type="VM", ext="*86"),
                   SimService(id="3458764515081031672", name="park", type="ParkServer", ext="*77", home_system=5)]
    sim = await start_simulator(fx)
    services = await (await connect(sim)).services()
    assert [(s.id, s.name, s.type, s.ext, s.home_system) for s in services] == [
        (3458764513956069980, "voicemail", "VM", "*86", 0), (3458764515081031672, "park", "ParkServer", "*77", 5)]


async def test_directory_entries_carry_every_field(start_simulator, connect) -> None:
    sim = await start_simulator()  # the demo world
    contacts = await (await connect(sim, login="dmitrys", password="78561")).directory()
    peter = next(c for c in contacts if c.ext == "3044")
    assert (peter.jid, peter.first_name, peter.last_name, peter.home_phone, peter.cell_phone, peter.email, peter.did) == (
        43884851428118509, "Peter", "Hyde", "+1-202-555-0104", "+1-512-555-0136", "peterh@xyzrd.com", "15125550136")
    assert len(contacts) == len(sim.fixture.people())


async def test_call_mode_is_sent_fire_and_forget(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    session = await connect(sim)
    await session.set_call_mode(CallMode(remote=True, device="79031744445", ring_delay=1, vm_delay=30))
    await session.services()  # a round trip: the mode command was processed before it
    live = [s for s in sim.sessions() if s.login == "alice" and s.active][0]
    assert live.call_mode == {"mode": "remote", "ringdelay": "1", "vmdelay": "30", "address": "79031744445"}


async def test_assign_device_returns_the_name_the_mx_reports(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    session = await connect(sim)
    assert await session.assign_device("sipPhone") == "sipPhone"
    assert [s for s in sim.sessions() if s.login == "alice" and s.active][0].assigned_device == "sipPhone"


async def test_make_answer_hold_retrieve_clear(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    bob = await connect(sim, login="bob")
    await alice.start_monitor()
    await bob.start_monitor()
    result = await alice.make_call("201", "202")
    assert (result.device_id, result.called_device) == ("201", "202") and result.call_id > 0
    await bob.answer_call(result.call_id, "202")
    held = await alice.hold_call(result.call_id, "201")
    assert isinstance(held, Held) and (held.call_id, held.holding_device, held.local_connection_info) == (
        result.call_id, "201", "hold")
    retrieved = await alice.retrieve_call(result.call_id, "201")
    assert isinstance(retrieved, Retrieved) and retrieved.retrieving_device == "201"
    cleared = await alice.clear_connection(result.call_id, "201")
    assert isinstance(cleared, ConnectionCleared) and (cleared.call_id, cleared.releasing_device) == (result.call_id, "201")
    assert sim.calls() == []


async def test_call_control_replies_are_matched_by_call_id_not_by_name(start_simulator, connect) -> None:
    """Two calls cleared concurrently each get their own ConnectionCleared (spec §9.3)."""
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    await alice.start_monitor()
    first = await sim.incoming_call(to_ext="201", from_number="5550001")
    second = await sim.incoming_call(to_ext="201", from_number="5550002")
    import asyncio

    a, b = await asyncio.gather(alice.clear_connection(second, "201"), alice.clear_connection(first, "201"))
    assert (a.call_id, b.call_id) == (second, first)


@pytest.mark.profiles(*(name for name, q in PROFILES.items() if q.get("call_control_reply") != "event"))
async def test_call_control_without_a_monitor_completes_on_the_direct_response(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    call_id = await sim.incoming_call(to_ext="201", from_number="5550001")
    cleared = await alice.clear_connection(call_id, "201")
    assert (cleared.call_id, cleared.device_id) == (call_id, "201")


async def test_transfer_and_recording(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    await alice.start_monitor()
    call_id = await sim.incoming_call(to_ext="201", from_number="5550001")
    await alice.answer_call(call_id, "201")
    await alice.start_recording(call_id, "201")
    await alice.stop_recording(call_id, "201", group="12345")
    await alice.transfer_call(call_id, "201", "202")
    live = [s for s in sim.sessions() if s.login == "alice" and s.active][0]
    assert {"StartRecording", "StopRecording", "SingleStepTransferCall", "AnswerCall"} <= set(live.commands)


async def test_unknown_call_is_a_csta_error_with_the_servers_text(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    await alice.start_monitor()
    for op in (alice.clear_connection, alice.hold_call, alice.retrieve_call, alice.answer_call):
        with pytest.raises(CSTAError) as err:
            await op(999, "201")
        assert err.value.text == "invalidCallIdentifier"
    assert alice.is_alive


async def test_voicemail_list_read_note_delete(start_simulator, connect) -> None:
    fx = small_world()
    mail = fx.add_voicemail("alice", audio_size=2000, note="old")
    fx.add_voicemail("alice", audio_size=100, media_type="Recording")
    sim = await start_simulator(fx)
    alice = await connect(sim)
    [vm] = await alice.voicemails()
    assert (vm.mail_id, vm.media_type, vm.sender, vm.from_name, vm.to, vm.note, vm.read) == (
        str(mail.mail_id), "VoiceMail", "3044", "Peter Hyde", "201", "old", False)
    assert [v.media_type for v in await alice.voicemails("Recording")] == ["Recording"]
    await alice.set_voicemail_read(vm.mail_id, True)
    await alice.set_voicemail_note(vm.mail_id, "new note")
    assert (mail.read, mail.note) == (True, "new note")
    await alice.delete_voicemail(vm.mail_id)
    await alice.delete_voicemail("424242")  # deleting an unknown mail succeeds (spec §4.15.2)
    assert await alice.voicemails() == []


async def test_note_injection_is_stored_exactly(start_simulator, connect) -> None:
    fx = small_world()
    mail = fx.add_voicemail("alice", audio_size=100)
    sim = await start_simulator(fx)
    alice = await connect(sim)
    hostile = "</note><read>true</read><note>&amp; <![CDATA[x]]> \"'\n\tПривет"
    await alice.set_voicemail_note(str(mail.mail_id), hostile)
    assert mail.note == hostile and mail.read is False
    assert (await alice.voicemails())[0].note == hostile


async def test_number_injection_reaches_the_mx_as_plain_text(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    hostile = "5550001</calledDirectoryNumber><calledDirectoryNumber>911"
    result = await alice.make_call("201", hostile)
    assert result.called_device == hostile
    assert any(c["called"]["device"] == hostile for c in sim.calls())


async def test_unsendable_characters_are_refused_before_anything_is_sent(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    with pytest.raises(MXBadRequest):
        await alice.set_voicemail_note("1", "bell\x07")
    with pytest.raises(MXBadRequest):
        await alice.set_voicemail_note("1", "x" * 70000)  # larger than one frame
    assert alice.is_alive and await alice.services() == []


async def test_conferences_create_update_list_delete_join(start_simulator, connect) -> None:
    fx = small_world()
    fx.conf_server.extension, fx.conf_server.did, fx.conf_server.invite_subject = "3900", "15125550100", "%Subject%"
    sim = await start_simulator(fx)
    alice = await connect(sim)
    created = await alice.create_conference(Conference(name="Weekly <sync>", access_id=47281964, type="Once",
                                                       duration=30, ws="None", ws_type="Undefined"))
    assert created.conf_id and created.owner_id == 43884851147406145 and created.name == "Weekly <sync>"
    updated = await alice.update_conference(Conference(conf_id=created.conf_id, name="Renamed", access_id=47281964,
                                                       type="Once", duration=45))
    assert (updated.conf_id, updated.name, updated.duration) == (created.conf_id, "Renamed", 45)
    assert [(c.conf_id, c.name) for c in await alice.conferences()] == [(created.conf_id, "Renamed")]
    info = await alice.conference_server_info()
    assert (info.extension, info.did, info.invite_subject) == ("3900", "15125550100", "%Subject%")
    call_id = await sim.incoming_call(to_ext="201", from_number="5550001")
    await alice.join_conference(str(call_id), 47281964)
    await alice.conference_from_call(call_id, 0)
    await alice.delete_conference(created.conf_id)
    assert await alice.conferences() == []
    with pytest.raises(CSTAError):
        await alice.delete_conference(created.conf_id)


async def test_concurrent_conference_creations_get_their_own_events(start_simulator, connect) -> None:
    import asyncio

    fx = small_world()
    fx.conferences.append(SimConference(conf_id="1", owner_id=1, name="existing"))
    sim = await start_simulator(fx)
    alice = await connect(sim)
    made = await asyncio.gather(*(alice.create_conference(Conference(name=f"c{i}", access_id=i)) for i in range(5)))
    assert [(c.name, c.access_id) for c in made] == [(f"c{i}", i) for i in range(5)]
    assert len({c.conf_id for c in made}) == 5


async def test_presence_round_trip(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    events = EventReader(alice)
    first = await events.next(PresenceChanged)  # own status right after login
    assert first.user_id == 0
    await alice.set_presence("BeRightBack", "back <soon> & \"then\"")
    changed = await events.next(PresenceChanged)
    assert (changed.user_id, changed.status, changed.note) == (0, "BeRightBack", "back <soon> & \"then\"")
    assert sim.fixture.user("alice").presence_note == "back <soon> & \"then\""


async def test_logout_is_idempotent_and_ends_the_event_stream(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    await alice.logout()
    await alice.logout()
    assert not alice.is_alive
    ended = [e async for e in alice.events()][-1]
    assert ended.mode == "logout"
    closed = [s for s in sim.sessions() if s.login == "alice"][0]
    assert "logout" in closed.commands
