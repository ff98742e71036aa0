"""Mailboxes: list per media type, chunked download with a server-side cursor, cancel, delete
idempotence, read flag and note, and the quirks around them."""

from __future__ import annotations

import base64

from mxproxy.simulator import Fixture, Quirks, SimUser, demo_fixture
from tests.rawcsta import RawCSTA


async def _dmitrys(raw_connect, sim) -> RawCSTA:  # type: ignore[no-untyped-def]
    conn = await raw_connect(sim)
    assert (await conn.login("dmitrys", "78561")).name == "loginResponce"
    await conn.read_until("presence")
    return conn


async def _download(conn: RawCSTA, mail_id: int, first_invoke: int = 20, media: str = "") -> tuple[bytes, list]:
    media_el = f"<mediaType>{media}</mediaType>" if media else ""
    await conn.send(first_invoke, f"<MailReceiveIncoming><faxSessionID>{mail_id}</faxSessionID>{media_el}</MailReceiveIncoming>")
    chunks = []
    while True:
        frame = await conn.read()
        assert frame.invoke_id == first_invoke + len(chunks), frame.payload[:200]
        assert frame.name == "MailReceiveIncomingResponse", frame.payload[:200]
        assert len(frame.payload) + 8 < 65535
        chunks.append(frame)
        if int(frame.root.get("chunkNumber")) >= int(frame.root.get("totalChunks")):
            break
        await conn.send(first_invoke + len(chunks),
                        f"<MailReceiveIncoming><faxSessionID>{mail_id}</faxSessionID><nextChunk></nextChunk>{media_el}</MailReceiveIncoming>")
    return b"".join(base64.b64decode(c.text("mediaContent")) for c in chunks), chunks


async def test_voicemail_list_matches_the_readme(start_simulator, raw_connect):
    conn = await _dmitrys(raw_connect, await start_simulator())
    await conn.send(2, "<MailGetListIncoming><userID>3095</userID></MailGetListIncoming>")
    reply = await conn.read()
    assert (reply.invoke_id, reply.name, reply.root.get("rowCount")) == (2, "MailGetListIncomingResponse", "2")
    mails = reply.root.findall("mail")
    assert [m.findtext("mailId") for m in mails] == ["82", "117"]
    first, second = mails
    assert first.get("from") == "3095" and first.get("fromName") == "Dmitry Sedykh" and first.get("ownerType") == "user"
    assert first.findtext("read") == "true" and first.findtext("note") == "text note" and first.findtext("duration") == "29"
    assert second.get("callerName") == "Peter Hyde" and second.findtext("received") == "1502565440"
    # [HTTP] variant with userId and an explicit media type
    await conn.send(3, "<MailGetListIncoming><userId>43884851147406145</userId><mediaType>Recording</mediaType></MailGetListIncoming>")
    recordings = await conn.read()
    assert recordings.invoke_id == 3 and recordings.root.findall("mail") == []


async def test_download_returns_the_fixture_audio_in_several_chunks(start_simulator, raw_connect):
    fixture = demo_fixture()
    expected = fixture.mailboxes["dmitrys"][1].content(fixture.base_dir)
    assert len(expected) > 32 * 1024 and expected[:4] == b"RIFF"
    conn = await _dmitrys(raw_connect, await start_simulator(fixture))
    data, chunks = await _download(conn, 117)
    assert data == expected
    assert len(chunks) == 4 and [c.root.get("chunkNumber") for c in chunks] == ["1", "2", "3", "4"]
    assert {c.root.get("totalChunks") for c in chunks} == {"4"}
    assert chunks[0].text("fileFormat") == "wav" and chunks[0].root.get("mailId") == "117"
    assert chunks[0].text("documentName") == "u00043884851147406145/m0021.wav"
    assert chunks[0].root.get("chunkSize") == str(32 * 1024)


async def test_small_chunk_quirk_makes_many_chunks_and_past_end_is_an_error(start_simulator, raw_connect):
    fx = Fixture(users=[SimUser(login="alice", password="pw", ext="201", jid=1001)])
    item = fx.add_voicemail("alice", audio_size=1000)
    sim = await start_simulator(fx, quirks=Quirks(mail_chunk_size=100))
    conn = await raw_connect(sim)
    await conn.login("alice", "pw")
    await conn.read_until("presence")
    data, chunks = await _download(conn, item.mail_id)
    assert data == item.audio and len(chunks) == 10
    await conn.send(99, f"<MailReceiveIncoming><faxSessionID>{item.mail_id}</faxSessionID><nextChunk></nextChunk></MailReceiveIncoming>")
    err = await conn.read()
    assert (err.invoke_id, err.name) == (99, "CSTAErrorCode")


async def test_past_end_repeat_quirk_sends_the_last_chunk_again(start_simulator, raw_connect):
    fx = Fixture(users=[SimUser(login="alice", password="pw", ext="201", jid=1001)])
    item = fx.add_voicemail("alice", audio_size=500)
    conn = await raw_connect(await start_simulator(fx, quirks=Quirks(next_chunk_past_end="repeat")))
    await conn.login("alice", "pw")
    await conn.read_until("presence")
    _, chunks = await _download(conn, item.mail_id)
    assert len(chunks) == 1  # MX Proxy still asks for one more (spec §9)
    await conn.send(50, f"<MailReceiveIncoming><faxSessionID>{item.mail_id}</faxSessionID><nextChunk></nextChunk></MailReceiveIncoming>")
    again = await conn.read()
    assert again.name == "MailReceiveIncomingResponse" and again.root.get("chunkNumber") == "1"
    assert again.text("mediaContent") == chunks[0].text("mediaContent")


async def test_cancel_ends_the_cursor_so_next_chunk_is_refused(start_simulator, raw_connect):
    conn = await _dmitrys(raw_connect, await start_simulator())
    await conn.send(2, "<MailReceiveIncoming><faxSessionID>82</faxSessionID></MailReceiveIncoming>")
    assert (await conn.read()).root.get("chunkNumber") == "1"
    await conn.send(3, "<MailCancelReceive><mailId>82</mailId></MailCancelReceive>")
    assert (await conn.read()).invoke_id == 3
    await conn.send(4, "<MailReceiveIncoming><faxSessionID>82</faxSessionID><nextChunk></nextChunk></MailReceiveIncoming>")
    assert (await conn.read()).name == "CSTAErrorCode"
    # a fresh request restarts at chunk 1
    await conn.send(5, "<MailReceiveIncoming><faxSessionID>82</faxSessionID></MailReceiveIncoming>")
    assert (await conn.read()).root.get("chunkNumber") == "1"


async def test_unknown_mail_download_is_a_csta_error_with_the_request_id(start_simulator, raw_connect):
    conn = await _dmitrys(raw_connect, await start_simulator())
    await conn.send(6, "<MailReceiveIncoming><faxSessionID>999</faxSessionID></MailReceiveIncoming>")
    err = await conn.read()
    assert (err.invoke_id, err.name) == (6, "CSTAErrorCode")
    assert len(err.root) == 1 and err.root[0].text  # ECMA-323 style: one child with the error text
    await conn.send(7, "<MailReceiveIncoming><faxSessionID>82</faxSessionID><mediaType>Recording</mediaType></MailReceiveIncoming>")
    assert (await conn.read()).name == "CSTAErrorCode"


async def test_delete_is_idempotent(start_simulator, raw_connect):
    sim = await start_simulator()
    conn = await _dmitrys(raw_connect, sim)
    for invoke in (2, 3):
        await conn.send(invoke, "<MailDeleteIncoming><mailId>82</mailId></MailDeleteIncoming>")
        reply = await conn.read()
        assert reply.invoke_id == invoke and reply.name != "CSTAErrorCode"
    assert [m.mail_id for m in sim.fixture.mailboxes["dmitrys"]] == [117]
    # someone else's mail: success, nothing deleted
    other = await raw_connect(sim)
    await other.login("peterh", "pass3044")
    await other.send(2, "<MailDeleteIncoming><mailId>117</mailId></MailDeleteIncoming>")
    assert (await other.read_until("MailDeleteIncomingResponse")).invoke_id == 2
    assert [m.mail_id for m in sim.fixture.mailboxes["dmitrys"]] == [117]


async def test_read_flag_and_note_change_the_list(start_simulator, raw_connect):
    conn = await _dmitrys(raw_connect, await start_simulator())
    await conn.send(2, "<MailSetStatus><mailId>117</mailId><read>true</read><mediaType>VoiceMail</mediaType></MailSetStatus>")
    assert (await conn.read()).name == "MailSetStatusResponse"
    await conn.send(3, "<UpdateVmNote><mailId>117</mailId><note>call back &amp; &lt;soon&gt;</note></UpdateVmNote>")
    assert (await conn.read()).name == "UpdateVmNoteResponse"
    await conn.send(4, "<MailGetListIncoming></MailGetListIncoming>")
    mail = [m for m in (await conn.read()).root.findall("mail") if m.findtext("mailId") == "117"][0]
    assert mail.findtext("read") == "true" and mail.findtext("note") == "call back & <soon>"
    await conn.send(5, "<MailSetStatus><mailId>4242</mailId><read>true</read></MailSetStatus>")
    assert (await conn.read()).name == "CSTAErrorCode"


async def test_monitor_required_quirk_refuses_mail_until_a_monitor_runs(start_simulator, raw_connect):
    conn = await _dmitrys(raw_connect, await start_simulator(quirks=Quirks(monitor_required_for_mail=True)))
    await conn.send(2, "<MailGetListIncoming/>")
    assert (await conn.read()).name == "CSTAErrorCode"
    await conn.send(3, "<MonitorStart><monitorObject><deviceObject>3095</deviceObject></monitorObject></MonitorStart>")
    assert (await conn.read()).name == "MonitorStartResponse"
    await conn.send(4, "<MailGetListIncoming/>")
    assert (await conn.read()).name == "MailGetListIncomingResponse"


async def test_list_without_media_type_defaults_to_voicemail_or_all_with_the_quirk(start_simulator, raw_connect):
    for quirks, expected in ((Quirks(), ["82", "117"]), (Quirks(mail_list_default="all"), ["82", "117", "118"])):
        fixture = demo_fixture()
        fixture.add_voicemail("dmitrys", audio=b"RIFF", media_type="Recording")
        conn = await _dmitrys(raw_connect, await start_simulator(fixture, quirks=quirks))
        await conn.send(2, "<MailGetListIncoming></MailGetListIncoming>")
        listed = (await conn.read()).root.findall("mail")
        assert [m.findtext("mailId") for m in listed] == expected
