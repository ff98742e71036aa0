"""Tolerant dispatch: every reading of the spec's open questions a real MX may take (issue 8).

A scripted raw MX (``ScriptedMX``) answers each way on purpose: multi-part results on 9999 or on
the request's id, call control answered by the event, the response or both in either order,
errors on either path, and the XML dialects the Go clients accept."""

from __future__ import annotations

import asyncio
from typing import Callable

import pytest

from mxproxy.connectors.base import ConnectionCleared, Held, PresenceChanged, Retrieved
from mxproxy.connectors.errors import CSTAError, MXTimeout
from mxproxy.connectors.zultys import parsers
from mxproxy.connectors.zultys.xml import parse
from tests.connectors.zultys.conftest import EventReader, RawRequest, ScriptedConnection

EVENT = 9999
MONITOR_OK = "<MonitorStartResponse><monitorCrossRefID>11</monitorCrossRefID></MonitorStartResponse>"

#: How a multi-part frame's invoke id is chosen: part number -> request id or 9999.
MULTIPART_IDS: dict[str, Callable[[int, int], int]] = {
    "event": lambda iid, n: EVENT,
    "request": lambda iid, n: iid,
    "mixed": lambda iid, n: iid if n % 2 else EVENT,
}


def ablist_page(index: int, size: int, count: int) -> str:
    entries = "".join(f'<abentry jid="{index * 50 + i + 1}"><firstName>P{index * 50 + i}</firstName>'
                      f'<businessPhone>{1000 + index * 50 + i}</businessPhone></abentry>' for i in range(count))
    return f'<ablist size="{size}" index="{index}">{entries}</ablist>'


def call_log_chunk(first: int, count: int) -> str:
    rows = "".join(f'<callinfo missed="false" direction="incoming"><record_id>{first + i}</record_id></callinfo>'
                   for i in range(count))
    return f"<callloginfo>{rows}</callloginfo>"


@pytest.mark.parametrize("ids", sorted(MULTIPART_IDS))
async def test_address_book_pages_arrive_on_9999_or_the_request_id(scripted_mx, connect, ids) -> None:
    size = 117

    async def handler(conn: ScriptedConnection, req: RawRequest) -> None:
        if req.root.tag == "iq" and req.root.get("id") == "addressbook":
            index = int(req.root.get("index", "0"))
            conn.send(MULTIPART_IDS[ids](req.invoke_id, index), ablist_page(index, size, min(50, size - index * 50)))

    mx = await scripted_mx(handler)
    contacts = await (await connect(mx.port)).directory()
    assert [c.jid for c in contacts] == list(range(1, size + 1))


@pytest.mark.parametrize("ids", sorted(MULTIPART_IDS))
@pytest.mark.parametrize("records", [0, 21, 43])
async def test_call_log_chunks_arrive_on_9999_or_the_request_id(scripted_mx, connect, ids, records) -> None:
    async def handler(conn: ScriptedConnection, req: RawRequest) -> None:
        if req.root.tag == "iq" and req.root.get("id") == "calllog":
            starts = list(range(0, records, 21)) or [0]
            for n, start in enumerate(starts):
                conn.send(MULTIPART_IDS[ids](req.invoke_id, n), call_log_chunk(start + 1, min(21, records - start)))

    mx = await scripted_mx(handler)
    entries = await (await connect(mx.port)).call_log()
    assert [e.record_id for e in entries] == list(range(1, records + 1))


async def test_a_late_chunk_of_a_finished_call_log_does_not_reach_the_next_one(scripted_mx, connect) -> None:
    """The first request's chunk comes (on its own id) while the second request is running."""
    requests: list[int] = []

    async def handler(conn: ScriptedConnection, req: RawRequest) -> None:
        if req.root.tag == "iq" and req.root.get("id") == "calllog":
            requests.append(req.invoke_id)
            if len(requests) == 2:
                conn.send(requests[0], call_log_chunk(900, 3))  # late: the first log already gave up
                conn.send(req.invoke_id, call_log_chunk(1, 2))

    mx = await scripted_mx(handler)
    session = await connect(mx.port, response_timeout=0.2)
    assert await session.call_log() == []  # nothing came: taken as empty
    assert [e.record_id for e in await session.call_log()] == [1, 2]


# -- call control ------------------------------------------------------------------------------

CALL_EVENTS = {
    "ClearConnection": ("connectionToBeCleared", "ConnectionClearedEvent", "droppedConnection"),
    "HoldCall": ("callToBeHeld", "HeldEvent", "heldConnection"),
    "RetrieveCall": ("callToBeRetrieved", "RetrievedEvent", "retrievedConnection"),
}

#: What the MX sends for a call-control command, in order: "response", "event" (on 9999),
#: "event@request" (the event carrying the request's invoke id), "error".
REPLY_ORDERS = {
    "both": ("response", "event"),
    "event-first": ("event", "response"),
    "event-only": ("event",),
    "event-on-request-id": ("event@request",),
    "event-on-request-id-then-response": ("event@request", "response"),
}


def call_control_mx(order: tuple[str, ...], gap: float = 0.0):
    async def handler(conn: ScriptedConnection, req: RawRequest) -> None:
        tag = req.root.tag
        if tag == "MonitorStart":
            conn.send(req.invoke_id, MONITOR_OK)
        elif tag in CALL_EVENTS:
            ref, event, connection = CALL_EVENTS[tag]
            call_id = req.root.findtext(f"{ref}/callID")
            device = req.root.findtext(f"{ref}/deviceID")
            body = (f"<{event}><monitorCrossRefID>11</monitorCrossRefID><{connection}><callID>{call_id}</callID>"
                    f"<deviceID>{device}</deviceID></{connection}><localConnectionInfo>x</localConnectionInfo>"
                    f"<cause>normal</cause></{event}>")
            for what in order:
                if what == "response":
                    conn.send(req.invoke_id, f"<{tag}Response></{tag}Response>")
                elif what == "error":
                    conn.send(req.invoke_id, "<CSTAErrorCode><operation>invalidCallIdentifier</operation></CSTAErrorCode>")
                else:
                    conn.send(req.invoke_id if what == "event@request" else EVENT, body)
                await conn.writer.drain()
                if gap:
                    await asyncio.sleep(gap)

    return handler


@pytest.mark.parametrize("order", sorted(REPLY_ORDERS))
async def test_call_control_completes_on_event_response_or_both(scripted_mx, connect, order) -> None:
    mx = await scripted_mx(call_control_mx(REPLY_ORDERS[order]))
    session = await connect(mx.port, call_reply_grace=0.05)
    await session.start_monitor()
    events = EventReader(session)
    cleared = await session.clear_connection(7, "201")
    held = await session.hold_call(8, "201")
    retrieved = await session.retrieve_call(8, "201")
    assert isinstance(cleared, ConnectionCleared) and (cleared.call_id, cleared.local_connection_info) == (7, "x")
    assert isinstance(held, Held) and held.call_id == 8 and held.cause == "normal"
    assert isinstance(retrieved, Retrieved) and retrieved.call_id == 8
    # the events also reach the session's event stream, whatever their invoke id
    assert isinstance(await events.next(ConnectionCleared), ConnectionCleared)


async def test_call_control_answered_only_by_the_response_returns_the_request_after_the_grace(scripted_mx, connect) -> None:
    mx = await scripted_mx(call_control_mx(("response",)))
    session = await connect(mx.port, call_reply_grace=0.05)
    await session.start_monitor()
    cleared = await session.clear_connection(7, "201")
    assert (cleared.call_id, cleared.device_id, cleared.releasing_device) == (7, "201", "201")


@pytest.mark.parametrize("order", [("error",), ("error", "event"), ("event", "error"), ("event@request", "error")])
async def test_a_csta_error_on_either_path_fails_call_control(scripted_mx, connect, order) -> None:
    mx = await scripted_mx(call_control_mx(order))
    session = await connect(mx.port, call_reply_grace=0.2)
    await session.start_monitor()
    with pytest.raises(CSTAError) as err:
        await session.hold_call(8, "201")
    assert err.value.text == "invalidCallIdentifier" and session.is_alive


async def test_call_control_with_no_reply_at_all_times_out(scripted_mx, connect) -> None:
    mx = await scripted_mx(call_control_mx(()))
    session = await connect(mx.port, response_timeout=0.2)
    await session.start_monitor()
    with pytest.raises(MXTimeout):
        await session.clear_connection(7, "201")


async def test_concurrent_hangups_answered_by_events_in_reverse_order_each_get_their_own(scripted_mx, connect) -> None:
    held: list[tuple[RawRequest, ScriptedConnection]] = []

    async def handler(conn: ScriptedConnection, req: RawRequest) -> None:
        if req.root.tag == "MonitorStart":
            conn.send(req.invoke_id, MONITOR_OK)
        elif req.root.tag == "ClearConnection":
            held.append((req, conn))
            if len(held) == 2:
                for r, c in reversed(held):  # both events, the second call's first, each on its own id
                    call_id = r.root.findtext("connectionToBeCleared/callID")
                    c.send(r.invoke_id, f"<ConnectionClearedEvent><droppedConnection><callID>{call_id}</callID>"
                                        f"<deviceID>201</deviceID></droppedConnection></ConnectionClearedEvent>")

    mx = await scripted_mx(handler)
    session = await connect(mx.port, call_reply_grace=0.05)
    await session.start_monitor()
    a, b = await asyncio.gather(session.clear_connection(1, "201"), session.clear_connection(2, "201"))
    assert (a.call_id, b.call_id) == (1, 2)


async def test_directory_and_call_log_at_once_on_request_ids_each_get_their_own(scripted_mx, connect) -> None:
    async def handler(conn: ScriptedConnection, req: RawRequest) -> None:
        if req.root.tag == "iq" and req.root.get("id") == "addressbook":
            conn.send(req.invoke_id, ablist_page(0, 3, 3))
        elif req.root.tag == "iq" and req.root.get("id") == "calllog":
            conn.send(req.invoke_id, call_log_chunk(1, 4))

    mx = await scripted_mx(handler)
    session = await connect(mx.port)
    contacts, log = await asyncio.gather(session.directory(), session.call_log())
    assert len(contacts) == 3 and [e.record_id for e in log] == [1, 2, 3, 4]


# -- XML dialects --------------------------------------------------------------------------------


@pytest.mark.parametrize("xml, text", [
    ("<CSTAErrorCode><operation>invalidCallIdentifier</operation></CSTAErrorCode>", "invalidCallIdentifier"),
    ("<CSTAErrorCode>invalidCallIdentifier</CSTAErrorCode>", "invalidCallIdentifier"),
    ("<CSTAErrorCode><security>privilegeViolation</security><x-unknown>1</x-unknown></CSTAErrorCode>",
     "privilegeViolation"),
    ("<CSTAErrorCode x-extra='1'>invalidCallIdentifier<x-unknown>1</x-unknown></CSTAErrorCode>",
     "invalidCallIdentifier"),
    ('<?xml version="1.0"?><CSTAErrorCode xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4">'
     "<operation>objectNotKnown</operation></CSTAErrorCode>", "objectNotKnown"),
    ("<CSTAErrorCode><vendorCode>42</vendorCode></CSTAErrorCode>", "42"),
])
def test_csta_error_text_in_a_child_or_in_the_root(xml, text) -> None:
    assert parsers.csta_error_text(parse(xml.encode())) == text


SERVICES = ("<GetServiceListResponse><Service><serviceId>5</serviceId><serviceName>vm</serviceName>"
            "<serviceType>VM</serviceType><extension>*86</extension></Service></GetServiceListResponse>")


@pytest.mark.parametrize("reply", [
    SERVICES,
    '<?xml version="1.0" encoding="utf-8"?>' + SERVICES,
    SERVICES.replace("<GetServiceListResponse>",
                     '<GetServiceListResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4">'),
    SERVICES.replace("<GetServiceListResponse>", '<csta:GetServiceListResponse xmlns:csta="urn:x">')
            .replace("</GetServiceListResponse>", "</csta:GetServiceListResponse>"),
    SERVICES.replace("<Service>", '<Service x-new="1"><x-unknown><deep/></x-unknown>'),
], ids=["plain", "prolog", "namespace", "prefixed", "unknown-markup"])
async def test_replies_with_prolog_namespace_or_unknown_markup_read_the_same(scripted_mx, connect, reply) -> None:
    async def handler(conn: ScriptedConnection, req: RawRequest) -> None:
        if req.root.tag == "GetServiceList":
            conn.send(req.invoke_id, reply)

    mx = await scripted_mx(handler)
    [service] = await (await connect(mx.port)).services()
    assert (service.id, service.name, service.type, service.ext) == (5, "vm", "VM", "*86")


@pytest.mark.parametrize("read", ["1", "t", "T", "TRUE", "true"])
@pytest.mark.parametrize("empty_note", ["<note/>", "<note></note>"])
async def test_mail_items_read_booleans_empty_elements_and_a_missing_media_type(scripted_mx, connect, read,
                                                                                empty_note) -> None:
    async def handler(conn: ScriptedConnection, req: RawRequest) -> None:
        if req.root.tag == "MailGetListIncoming":
            conn.send(req.invoke_id, f'<MailGetListIncomingResponse><mail from="3044"><mailId>82</mailId>'
                                     f"<read>{read}</read>{empty_note}</mail></MailGetListIncomingResponse>")

    mx = await scripted_mx(handler)
    session = await connect(mx.port)
    [listed] = await session.voicemails("Recording")
    assert (listed.mail_id, listed.read, listed.note, listed.media_type) == ("82", True, "", "Recording")
    assert (await session.voicemails())[0].media_type == "VoiceMail"


@pytest.mark.parametrize("root", ["loginResponce", "loginResponse"])
async def test_login_reply_is_accepted_in_either_spelling(scripted_mx, connect, root) -> None:
    mx = await scripted_mx(None)
    mx.LOGIN_OK = f'<{root} Code="0" sn="9" apiversion="11" ext="201" userId="7" x-new="y">OK<x-unknown/></{root}>'
    session = await connect(mx.port)
    assert (session.login_info.server_id, session.login_info.extension) == ("9", "201")


async def test_a_reply_to_iq_set_mode_and_server_keepalives_are_ignored(scripted_mx, connect) -> None:
    from mxproxy.connectors.base import CallMode

    async def handler(conn: ScriptedConnection, req: RawRequest) -> None:
        if req.root.tag == "iq" and req.root.get("id") == "mode":
            conn.send(req.invoke_id, '<iq type="result" id="mode"/>')
        elif req.root.tag == "GetServiceList":
            conn.send(0, "<keepalive />")
            conn.send(EVENT, "<keepalive/>")
            conn.send(req.invoke_id, "<keepalive/>")  # not a reply, whatever its id
            conn.send(req.invoke_id, SERVICES)

    mx = await scripted_mx(handler)
    session = await connect(mx.port)
    events = EventReader(session)
    await session.set_call_mode(CallMode(remote=False))
    assert [s.id for s in await session.services()] == [5]
    assert session.is_alive
    await session.set_presence("Available")  # scripted MX sends nothing back: only login events in the stream
    with pytest.raises(asyncio.TimeoutError):
        await events.next(PresenceChanged, timeout=0.1)
    assert all(not isinstance(e, PresenceChanged) for e in events.seen)

