"""Multi-part results: call-log chunks, address-book pages, voicemail chunks."""

from __future__ import annotations

import asyncio
import base64

import pytest

from mxproxy.connectors.errors import CSTAError, MXProtocolError
from mxproxy.simulator import Quirks
from tests.connectors.zultys.conftest import small_world

# -- call log --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 20, 21, 42, 43])
async def test_call_log_of_every_edge_size_is_complete(start_simulator, connect, n: int) -> None:
    fx = small_world()
    expected = fx.set_call_log("alice", n)
    sim = await start_simulator(fx)
    alice = await connect(sim, call_log_idle=0.2)
    entries = await alice.call_log()
    assert [e.record_id for e in entries] == [e.record_id for e in expected]
    if n:
        first = entries[0]
        assert (first.direction, first.gcid, first.calling_party_no, first.self_leg_type) == (
            expected[0].direction, expected[0].gcid, "3044", 9)


async def test_call_log_on_a_chunk_boundary_does_not_wait_the_response_timeout(start_simulator, connect) -> None:
    fx = small_world()
    fx.set_call_log("alice", 42)
    sim = await start_simulator(fx)
    # a 30 s response timeout would make a stall obvious; the idle gap ends it instead
    alice = await connect(sim, call_log_idle=0.2, response_timeout=30.0)
    entries = await asyncio.wait_for(alice.call_log(), 5)
    assert len(entries) == 42


async def test_call_log_end_marker_and_custom_chunk_size(start_simulator, connect) -> None:
    fx = small_world()
    fx.set_call_log("alice", 30)
    sim = await start_simulator(fx, quirks=Quirks(call_log_chunk=10, call_log_end_marker=True))
    alice = await connect(sim, call_log_chunk=10, call_log_idle=5.0)
    entries = await asyncio.wait_for(alice.call_log(), 3)  # the empty marker ends it, not the 5 s gap
    assert len(entries) == 30


async def test_empty_call_log_with_no_reply_at_all_is_empty(start_simulator, connect) -> None:
    sim = await start_simulator(small_world(), quirks=Quirks(empty_call_log="nothing"))
    alice = await connect(sim, response_timeout=0.3)
    assert await alice.call_log() == []
    assert alice.is_alive


async def test_call_log_since_filters_on_the_server(start_simulator, connect) -> None:
    fx = small_world()
    entries = fx.set_call_log("alice", 10, start_time=1_500_000_000, step=60)
    sim = await start_simulator(fx)
    alice = await connect(sim)
    got = await alice.call_log(since=entries[5].disconnect_timestamp)
    assert [e.record_id for e in got] == [e.record_id for e in entries[5:]]


async def test_concurrent_call_log_requests_do_not_mix_their_chunks(start_simulator, connect) -> None:
    fx = small_world()
    fx.set_call_log("alice", 43)
    sim = await start_simulator(fx)
    alice = await connect(sim, call_log_idle=0.2)
    a, b = await asyncio.gather(alice.call_log(), alice.call_log())
    assert len(a) == len(b) == 43


# -- directory -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [50, 51, 117])
async def test_directory_pages_until_size(start_simulator, connect, size: int) -> None:
    sim = await start_simulator(small_world(directory_entries=size - 3))
    alice = await connect(sim)
    contacts = await alice.directory()
    assert len(contacts) == size and len({c.jid for c in contacts}) == size
    pages = [s for s in sim.sessions() if s.login == "alice"][0].commands.count("iq")
    assert pages == -(-size // 50)


async def test_empty_directory(scripted_mx, connect) -> None:
    async def handler(conn, request) -> None:
        if request.root.tag == "iq" and request.root.get("id") == "addressbook":
            conn.send(9999, '<ablist size="0" index="0"></ablist>')

    mx = await scripted_mx(handler)
    alice = await connect(mx.port)
    assert await alice.directory() == []
    assert mx.names().count("iq") == 1


async def test_directory_error_reply_is_a_csta_error(scripted_mx, connect) -> None:
    async def handler(conn, request) -> None:
        if request.root.tag == "iq":
            conn.send(request.invoke_id, "<CSTAErrorCode><operation>generic</operation></CSTAErrorCode>")

    mx = await scripted_mx(handler)
    alice = await connect(mx.port)
    with pytest.raises(CSTAError):
        await alice.directory()


# -- voicemail -------------------------------------------------------------------------------


async def _download(session, mail_id: str) -> tuple[bytes, object]:
    download = await session.download_voicemail(mail_id)
    async with download:
        data = b"".join([chunk async for chunk in download])
    return data, download


async def test_voicemail_of_one_chunk(start_simulator, connect) -> None:
    fx = small_world()
    mail = fx.add_voicemail("alice", audio_size=5000)
    sim = await start_simulator(fx)
    alice = await connect(sim)
    data, download = await _download(alice, str(mail.mail_id))
    assert data == mail.audio
    assert (download.total_chunks, download.file_format, download.document_name) == (1, "wav", mail.document_name)
    commands = [s for s in sim.sessions() if s.login == "alice"][0].commands
    assert commands.count("MailReceiveIncoming") == 1 and "MailCancelReceive" not in commands


async def test_voicemail_of_many_chunks(start_simulator, connect) -> None:
    fx = small_world()
    mail = fx.add_voicemail("alice", audio_size=100_000)
    sim = await start_simulator(fx, quirks=Quirks(mail_chunk_size=7000))
    alice = await connect(sim)
    data, download = await _download(alice, str(mail.mail_id))
    assert data == mail.audio and download.total_chunks == 15
    commands = [s for s in sim.sessions() if s.login == "alice"][0].commands
    assert commands.count("MailReceiveIncoming") == 15  # never a nextChunk past the end
    assert "MailCancelReceive" not in commands


async def test_largest_chunks_fit_in_a_frame(start_simulator, connect) -> None:
    fx = small_world()
    mail = fx.add_voicemail("alice", audio_size=150_000)
    sim = await start_simulator(fx, quirks=Quirks(mail_chunk_size=48_000))
    alice = await connect(sim)
    data, _ = await _download(alice, str(mail.mail_id))
    assert data == mail.audio


async def test_cancel_mid_download_sends_mail_cancel_receive(start_simulator, connect) -> None:
    fx = small_world()
    mail = fx.add_voicemail("alice", audio_size=50_000)
    sim = await start_simulator(fx, quirks=Quirks(mail_chunk_size=5000))
    alice = await connect(sim)
    download = await alice.download_voicemail(str(mail.mail_id))
    got = []
    async for chunk in download:
        got.append(chunk)
        if len(got) == 2:
            break
    await download.aclose()
    await download.aclose()
    commands = [s for s in sim.sessions() if s.login == "alice"][0].commands
    assert commands.count("MailCancelReceive") == 1 and commands.count("MailReceiveIncoming") == 2
    assert b"".join(got) == mail.audio[:10_000]


async def test_unknown_voicemail_fails_before_the_download_starts(start_simulator, connect) -> None:
    sim = await start_simulator(small_world())
    alice = await connect(sim)
    with pytest.raises(CSTAError):
        await alice.download_voicemail("4242")


async def test_bad_base64_in_a_later_chunk_surfaces(scripted_mx, connect) -> None:
    good = base64.b64encode(b"RIFF....").decode()

    async def handler(conn, request) -> None:
        if request.root.tag == "MailReceiveIncoming":
            if request.root.find("nextChunk") is None:
                content, number = good, 1
            else:
                content, number = "@@not base64@@", 2
            conn.send(request.invoke_id, f'<MailReceiveIncomingResponse mailId="5" chunkNumber="{number}" '
                                         f'totalChunks="3"><fileFormat>wav</fileFormat><documentName>m.wav'
                                         f"</documentName><mediaContent>{content}</mediaContent>"
                                         "</MailReceiveIncomingResponse>")
        elif request.root.tag == "MailCancelReceive":
            conn.send(request.invoke_id, "<MailCancelReceiveResponse></MailCancelReceiveResponse>")

    mx = await scripted_mx(handler)
    alice = await connect(mx.port)
    download = await alice.download_voicemail("5")
    chunks = []
    with pytest.raises(MXProtocolError):
        async with download:
            async for chunk in download:
                chunks.append(chunk)
    assert chunks == [b"RIFF...."]
    assert mx.names().count("MailCancelReceive") == 1


async def test_a_chunk_number_that_does_not_advance_is_a_protocol_error(scripted_mx, connect) -> None:
    async def handler(conn, request) -> None:
        if request.root.tag == "MailReceiveIncoming":
            conn.send(request.invoke_id, '<MailReceiveIncomingResponse mailId="5" chunkNumber="1" totalChunks="2">'
                                         "<mediaContent>AAAA</mediaContent></MailReceiveIncomingResponse>")

    mx = await scripted_mx(handler)
    alice = await connect(mx.port)
    download = await alice.download_voicemail("5")
    with pytest.raises(MXProtocolError):
        async for _ in download:
            pass
