"""Address book pages, services and call-log chunks, driven by hand-written frames."""

from __future__ import annotations

import pytest

from mxproxy.simulator import Fixture, Quirks, SimUser
from tests.rawcsta import RawCSTA


def _fixture_with(directory: int, call_log: int | None = None) -> Fixture:
    fx = Fixture(users=[SimUser(login="alice", password="pw", ext="201", jid=1001, first_name="Alice", last_name="Zed")])
    fx.add_directory_entries(directory)
    if call_log is not None:
        fx.set_call_log("alice", call_log)
    return fx


async def _login(raw_connect, sim) -> RawCSTA:  # type: ignore[no-untyped-def]
    conn = await raw_connect(sim)
    assert (await conn.login("alice", "pw")).name == "loginResponce"
    await conn.read_until("presence")
    return conn


async def _all_pages(conn: RawCSTA) -> tuple[list[int], list[str], int]:
    """Page the address book the way every client does; returns (indexes, jids, size)."""
    index, indexes, jids = 0, [], []
    while True:
        await conn.send(10 + index, f'<iq type="get" id="addressbook" index="{index}"></iq>')
        page = await conn.read()
        assert page.invoke_id == 9999 and page.name == "ablist"
        size = int(page.root.get("size"))
        indexes.append(int(page.root.get("index")))
        jids += [e.get("jid") for e in page.root.findall("abentry")]
        if (index + 1) * 50 >= size:
            return indexes, jids, size
        index += 1


@pytest.mark.parametrize("others, pages", [(49, [0]), (50, [0, 1]), (116, [0, 1, 2])])
async def test_address_book_pages_hold_50_entries_with_total_size(start_simulator, raw_connect, others, pages):
    sim = await start_simulator(_fixture_with(others))
    conn = await _login(raw_connect, sim)
    indexes, jids, size = await _all_pages(conn)
    assert size == others + 1  # + alice herself
    assert indexes == pages
    assert len(jids) == size and len(set(jids)) == size


async def test_empty_address_book_is_one_empty_ablist(start_simulator, raw_connect):
    fx = _fixture_with(0)
    sim = await start_simulator(fx)
    conn = await _login(raw_connect, sim)
    fx.users.clear()  # the directory can change under a live session
    await conn.send(2, '<iq type="get" id="addressbook" index="0"></iq>')
    page = await conn.read()
    assert (page.name, page.root.get("size"), page.root.get("index"), len(page.root)) == ("ablist", "0", "0", 0)


async def test_abentry_carries_the_readme_fields(start_simulator, raw_connect):
    sim = await start_simulator()
    conn = await raw_connect(sim)
    await conn.login("dmitrys", "78561")
    await conn.read_until("presence")
    await conn.send(2, '<iq type="get" id="addressbook" index="0" sortmode="first"></iq>')
    page = await conn.read()
    assert page.root.get("size") == "17"
    peter = next(e for e in page.root.findall("abentry") if e.get("jid") == "43884851428118509")
    assert peter.findtext("firstName") == "Peter" and peter.findtext("businessPhone") == "3044"
    assert peter.findtext("homePhone") == "+1-202-555-0104" and peter.findtext("did") == "15125550136"
    assert peter.get("presence") == "Available"


async def test_services_list_is_the_direct_response(start_simulator, raw_connect):
    conn = await raw_connect(await start_simulator())
    await conn.login("dmitrys", "78561")
    await conn.send(4, "<GetServiceList/>")
    reply = await conn.read_until("GetServiceListResponse")
    assert reply.invoke_id == 4
    services = reply.root.findall("Service")
    assert [(s.findtext("serviceName"), s.findtext("serviceType"), s.findtext("extension")) for s in services][:3] == [
        ("TESTIVR", "AA", "3777"), ("park", "ParkServer", "*77"), ("voicemail", "VM", "*86")]
    assert services[2].findtext("serviceId") == "3458764513956069980"


@pytest.mark.parametrize("entries, chunks", [(20, [20]), (21, [21]), (42, [21, 21]), (43, [21, 21, 1])])
async def test_call_log_comes_in_chunks_of_21_in_record_order(start_simulator, raw_connect, entries, chunks):
    sim = await start_simulator(_fixture_with(0, entries))
    conn = await _login(raw_connect, sim)
    await conn.send(3, '<iq type="get" id="calllog" timestamp="-1"></iq>')
    frames = await conn.read_all(quiet=0.2)
    assert all(f.invoke_id == 9999 and f.name == "callloginfo" for f in frames)
    assert [len(f.root.findall("callinfo")) for f in frames] == chunks
    ids = [int(c.findtext("record_id")) for f in frames for c in f.root.findall("callinfo")]
    assert ids == sorted(ids) and len(ids) == entries


async def test_empty_call_log_is_an_empty_callloginfo(start_simulator, raw_connect):
    conn = await _login(raw_connect, await start_simulator(_fixture_with(0, 0)))
    await conn.send(3, '<iq type="get" id="calllog" timestamp="-1"></iq>')
    frame = await conn.read()
    assert (frame.invoke_id, frame.name, len(frame.root)) == (9999, "callloginfo", 0)


async def test_empty_call_log_quirk_sends_nothing(start_simulator, raw_connect):
    sim = await start_simulator(_fixture_with(0, 0), quirks=Quirks(empty_call_log="nothing"))
    conn = await _login(raw_connect, sim)
    await conn.send(3, '<iq type="get" id="calllog" timestamp="-1"></iq>')
    await conn.expect_silence(0.2)


async def test_call_log_chunk_size_and_end_marker_quirks(start_simulator, raw_connect):
    sim = await start_simulator(_fixture_with(0, 10), quirks=Quirks(call_log_chunk=5, call_log_end_marker=True))
    conn = await _login(raw_connect, sim)
    await conn.send(3, '<iq type="get" id="calllog" timestamp="-1"></iq>')
    assert [len(f.root) for f in await conn.read_all()] == [5, 5, 0]


async def test_call_log_timestamp_filter_and_readme_entries(start_simulator, raw_connect):
    conn = await raw_connect(await start_simulator())
    await conn.login("dmitrys", "78561")
    await conn.send(3, '<iq type="get" id="calllog" timestamp="-1"></iq>')
    frames = [f for f in await conn.read_all() if f.name == "callloginfo"]
    assert [len(f.root) for f in frames] == [21, 6]
    first = frames[0].root.find("callinfo")
    assert first.get("missed") == "true" and first.get("direction") == "incoming"
    assert first.findtext("record_id") == "973" and first.findtext("gcid") == "63022-00-0000D-3B9"
    assert first.findtext("extension") == "3044" and first.findtext("selfLegType") == "9"
    await conn.send(4, '<iq type="get" id="calllog" timestamp="1504522740"></iq>')
    later = [c.findtext("record_id") for f in await conn.read_all() for c in f.root.findall("callinfo")]
    assert later[0] == "1190" and "1188" not in later and later[-1] == "1301"


# -- address-book change notifications (MonitorStartAb, spec §4.1, §5.9) ------------------------


async def test_monitor_start_ab_gets_ab_user_events_for_directory_changes(start_simulator, raw_connect):
    sim = await start_simulator(_fixture_with(0))
    conn = await _login(raw_connect, sim)
    await conn.send(2, "<MonitorStartAb></MonitorStartAb>")
    reply = await conn.read()
    assert (reply.invoke_id, reply.name) == (2, "MonitorStartAbResponse")
    await sim.add_directory_entry("250", jid=777, first_name="Dora", last_name="New", cell_phone="+15550100")
    added = await conn.read()
    assert (added.invoke_id, added.name) == (9999, "AbAddUserEvent")
    entry = added.root.find("abentry")
    assert entry.get("jid") == "777"
    assert (added.text("abentry/businessPhone"), added.text("abentry/firstName"), added.text("abentry/lastName"),
            added.text("abentry/cellPhone")) == ("250", "Dora", "New", "+15550100")
    await sim.update_directory_entry("250", email="dora@example.org")
    updated = await conn.read()
    assert (updated.name, updated.text("abentry/email"), updated.root.find("abentry").get("jid")) == (
        "AbUpdateUserEvent", "dora@example.org", "777")
    await sim.delete_directory_entry("250")
    deleted = await conn.read()
    assert (deleted.name, deleted.text("userId"), len(deleted.root)) == ("AbDeleteUserEvent", "777", 1)
    await conn.send(3, '<iq type="get" id="addressbook" index="0"></iq>')
    assert [e.get("jid") for e in (await conn.read_until("ablist")).root.findall("abentry")] == ["1001"]


async def test_ab_user_events_only_reach_sessions_that_asked_and_stop_after_monitor_stop_ab(start_simulator, raw_connect):
    sim = await start_simulator(_fixture_with(0))
    watcher, other = await _login(raw_connect, sim), await _login(raw_connect, sim)
    await watcher.send(2, "<MonitorStartAb/>")
    await watcher.read_until("MonitorStartAbResponse")
    assert [s.ab_notify for s in sim.sessions()] == [True, False]
    await sim.add_directory_entry("250", first_name="Dora")
    assert (await watcher.read()).name == "AbAddUserEvent"
    await other.expect_silence()
    await watcher.send(3, "<MonitorStopAb/>")
    assert (await watcher.read()).name == "MonitorStopAbResponse"
    await sim.delete_directory_entry("250")
    await watcher.expect_silence()


async def test_new_directory_entry_gets_a_fresh_jid_and_a_deleted_user_cannot_log_in(start_simulator, raw_connect):
    fx = _fixture_with(2)
    sim = await start_simulator(fx)
    entry = await sim.add_directory_entry("250", first_name="Dora")
    assert entry.jid == 1 + max(p.jid for p in fx.people() if p is not entry)
    await sim.delete_directory_entry("201")  # alice, a user
    conn = await raw_connect(sim)
    assert (await conn.login("alice", "pw")).name == "loginFailed"


async def test_refused_monitor_start_ab_with_the_quirk_off(start_simulator, raw_connect):
    sim = await start_simulator(_fixture_with(0), quirks=Quirks(address_book_events=False))
    conn = await _login(raw_connect, sim)
    await conn.send(2, "<MonitorStartAb/>")
    reply = await conn.read()
    assert (reply.invoke_id, reply.name, reply.text("operation")) == (2, "CSTAErrorCode", "invalidFeature")
    await sim.add_directory_entry("250", first_name="Dora")
    await conn.expect_silence()
