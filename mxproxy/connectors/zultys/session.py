"""``ZultysSession``: every operation of the ``MXSession`` contract on top of one ``CSTAClient``.

Replies that are events are correlated by content (spec §9.3). Call control (ClearConnection,
HoldCall, RetrieveCall, AnswerCall, transfer, recording, conference from calls) completes on
whichever the MX sends: the direct response, the event **of that call id**, or both in either
order (the second one gets ``mx.callReplyGrace``); a ``CSTAErrorCode`` on the command's id fails
it. Conference create/update take the ``ConfAddEvent``/``ConfUpdEvent`` of that conference id.
Multi-part results (address book pages, call-log chunks) are accepted on 9999 or on the
request's invoke id; call-log streams are serialised per session, because on 9999 their chunks
are matched by root name and two interleaved streams could not be told apart.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from typing import AsyncIterator, Callable
from xml.etree.ElementTree import Element

from mxproxy.config import MXConfig
from mxproxy.connectors import base
from mxproxy.connectors.errors import MXError, MXLoginFailed, MXProtocolError, MXTimeout
from mxproxy.connectors.zultys import commands, parsers
from mxproxy.connectors.zultys.calllog import CallLogCompletion
from mxproxy.connectors.zultys.client import CSTAClient
from mxproxy.connectors.zultys.trace import TraceWriter
from mxproxy.connectors.zultys.voicemail import ZultysVoicemailDownload, fetch_chunk
from mxproxy.connectors.zultys.xml import attr_int

log = logging.getLogger("mxproxy.connectors.zultys")

__all__ = ["ZultysSession", "EventQueue", "ADDRESS_BOOK_PAGE"]

ADDRESS_BOOK_PAGE = 50
#: Login failure codes after which a clear-text retry is allowed (spec §2.2, §10 C2).
CLEAR_TEXT_CODES = frozenset({2, 4})
#: The MX's spelling (spec §2.2) and the dictionary one, should a firmware ever correct it.
LOGIN_OK = frozenset({"loginResponce", "loginResponse"})
#: Root names of the events that confirm a call-control command, by command.
CALL_EVENTS: dict[str, tuple[str, ...]] = {
    "clear": ("ConnectionClearedEvent",),
    "hold": ("HeldEvent",),
    "retrieve": ("RetrievedEvent",),
    "answer": ("EstablishedEvent",),
    "transfer": ("TransferedEvent", "TransferredEvent"),
    "recording": ("RecordingStateEvent",),
    "conference": ("ConferencedEvent",),
}


class EventQueue:
    """Bounded, drop-oldest buffer between the reader and the single consumer of ``events()``.

    ``put`` never blocks or awaits, so a slow consumer cannot stall the protocol reader (spec
    §9.4). ``SessionEnded`` is never dropped and is always the last item."""

    __slots__ = ("_items", "_limit", "_waiter", "_final", "dropped", "label")

    def __init__(self, limit: int, label: str) -> None:
        self._items: collections.deque[base.Event] = collections.deque()
        self._limit = max(1, limit)
        self._waiter: asyncio.Future[None] | None = None
        self._final = False
        self.dropped = 0
        self.label = label

    def put(self, event: base.Event) -> None:
        if self._final:
            return
        if isinstance(event, base.SessionEnded):
            self._final = True
        elif len(self._items) >= self._limit:
            self._items.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("MX session %s: event consumer too slow, dropped %d oldest event(s) so far",
                            self.label, self.dropped)
        self._items.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __len__(self) -> int:
        return len(self._items)

    async def iterate(self) -> AsyncIterator[base.Event]:
        while True:
            while self._items:
                event = self._items.popleft()
                yield event
                if isinstance(event, base.SessionEnded):
                    return
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


class ZultysSession(base.MXSession):
    capabilities = base.ALL_CAPABILITIES

    def __init__(self, config: MXConfig, label: str) -> None:
        self._config = config
        self.label = label
        self._queue = EventQueue(config.event_queue, label)
        self._client: CSTAClient | None = None
        self._monitors: dict[str, int] = {}  # device -> monitorCrossRefID
        self._directory_lock = asyncio.Lock()
        self._call_log_lock = asyncio.Lock()
        self.login_info = base.LoginInfo(server_id="", extension="", user_id=0)
        #: MonitorStartAb outcome: None = not asked / no reply (yet), True = accepted, False = refused.
        self.address_book_events: bool | None = None
        #: The TLS handshake resumed an earlier session of this MX (``tls.SessionCache``).
        self.tls_resumed = False

    # -- set-up (used by the connector) --------------------------------------------------------

    def attach(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> CSTAClient:
        self._client = CSTAClient(reader, writer, self._config, label=self.label, on_event=self._queue.put,
                                  on_end=self._queue.put)
        self._client.start()
        return self._client

    def start_trace(self, request: base.TraceRequest) -> bool:
        client = self._client
        if client is None or not client.alive:
            return False
        if client.trace is not None:
            client.trace.close()
            client.trace = None
        if request.active:
            try:
                client.trace = TraceWriter(request, self.label.partition("@")[0])
            except OSError as exc:
                log.warning("MX session %s: cannot start a CSTA trace in %s: %s", self.label, request.directory, exc)
                return False
        return True

    @property
    def client(self) -> CSTAClient:
        if self._client is None:
            raise RuntimeError("session is not connected")
        return self._client

    async def login(self, user: str, password: str) -> base.LoginInfo:
        """Hashed password first; one clear-text retry on Code 2/4 when apiversion ≥ 2 (spec §2.2)."""
        reply = await self.client.request(commands.login(user, password))
        if reply.tag == "loginFailed":
            code, api = parsers.login_code(reply), parsers.api_version(reply)
            if code in CLEAR_TEXT_CODES and api >= 2 and not commands.looks_hashed(password):
                log.info("MX session %s: hashed login refused (code %d), retrying with the clear-text password",
                         self.label, code)
                reply = await self.client.request(commands.login(user, password, clear_text=True))
        if reply.tag == "loginFailed":
            raise MXLoginFailed(parsers.login_code(reply), (reply.text or "").strip())
        if reply.tag not in LOGIN_OK:
            raise MXProtocolError(f"unexpected reply to loginRequest: {reply.tag!r}")
        self.login_info = parsers.login_info(reply)
        return self.login_info

    # -- lifecycle -----------------------------------------------------------------------------

    def events(self) -> AsyncIterator[base.Event]:
        return self._queue.iterate()

    @property
    def is_alive(self) -> bool:
        return self._client is not None and self._client.alive

    @property
    def dropped_events(self) -> int:
        return self._queue.dropped

    async def logout(self) -> None:
        client = self._client
        if client is None or not client.alive:
            return
        try:
            client.send(commands.LOGOUT)
        except Exception:  # best effort: we are closing anyway
            pass
        client.end("logout", "logged out")
        await client.wait_closed()

    async def close(self) -> None:
        client = self._client
        if client is None or not client.alive:
            return
        client.end("closed", "closed by the proxy")
        await client.wait_closed()

    # -- monitor -------------------------------------------------------------------------------

    async def start_monitor(self, device: str | None = None) -> int:
        device = device or self.login_info.extension
        known = self._monitors.get(device)
        if known is not None:
            return known
        el = await self.client.request(commands.monitor_start(device))
        monitor = parsers.monitor_id(el)
        self._monitors[device] = monitor
        return monitor

    async def stop_monitor(self, monitor_id: int) -> None:
        await self.client.request(commands.monitor_stop(monitor_id))
        for device, ref in list(self._monitors.items()):
            if ref == monitor_id:
                del self._monitors[device]

    def watch_address_book(self) -> None:
        """Ask for ``Ab*Event``s (``MonitorStartAb``, spec §4.1/§5.9) so cached directories can be
        dropped when the address book changes.

        Not awaited: no client checks the reply and a real MX may not send one, so a login must
        not wait for it. A ``CSTAErrorCode`` (an MX without the feature) is logged and the session
        goes on without the events (the directory cache's TTL still applies)."""
        client = self.client
        try:
            iid, fut = client.begin(commands.MONITOR_START_AB)
        except MXError as exc:  # the session already ended: its event stream says so
            log.debug("MX session %s: cannot send MonitorStartAb: %s", self.label, exc)
            return
        expiry = asyncio.get_running_loop().call_later(client.timeout, client.finish, iid, fut)

        def done(f: asyncio.Future[Element]) -> None:
            expiry.cancel()
            client.finish(iid, f)
            if f.cancelled():
                log.debug("MX session %s: no reply to MonitorStartAb; address-book events may still come", self.label)
                return
            exc = f.exception()
            if exc is not None:
                log.debug("MX session %s: MonitorStartAb not answered: %s", self.label, exc)
            elif f.result().tag == "CSTAErrorCode":
                self.address_book_events = False
                log.info("MX session %s: the MX refused MonitorStartAb (%s); the directory cache relies on its TTL",
                         self.label, parsers.csta_error_text(f.result()))
            else:
                self.address_book_events = True

        fut.add_done_callback(done)

    # -- directory and lists -------------------------------------------------------------------

    async def directory(self) -> list[base.Contact]:
        """All address-book pages. With the MX's 50 entries per page, "stop once ``size`` entries
        arrived" is exactly the clients' rule "stop when ``(index+1)*50 >= size``"; counting
        entries also ends correctly with another page size, and an empty page always ends it.

        Once page 0 told us ``size`` (and the page size is the expected 50), the remaining pages
        are requested together and matched by their ``index``: the MX builds page N+1 while we
        parse page N. Each page has the full response timeout."""
        async with self._directory_lock:
            first = await self._address_book_page(0)
            contacts = list(first.contacts)
            if not first.contacts or len(contacts) >= first.size:
                return contacts
            index = 1
            if len(first.contacts) == ADDRESS_BOOK_PAGE:
                count = -(-first.size // ADDRESS_BOOK_PAGE)
                pages = await asyncio.gather(*(self._address_book_page(i) for i in range(1, count)))
                for page in pages:
                    contacts.extend(page.contacts)
                    if not page.contacts:
                        return contacts
                index = count
            while len(contacts) < first.size:  # a server whose pages are smaller than 50
                page = await self._address_book_page(index)
                if not page.contacts:
                    break
                contacts.extend(page.contacts)
                index += 1
            return contacts

    async def _address_book_page(self, index: int) -> parsers.AddressBookPage:
        """One ``ablist`` page (an event, matched by root name and ``index``); a CSTAErrorCode
        reply to the request fails it."""
        client = self.client
        sub = client.subscribe("ablist", _page_index(index))
        iid, reply = client.begin(commands.address_book(index), subs=(sub,))
        client.failing_on_error(reply, sub)
        try:
            return parsers.address_book_page(await sub.get(client.timeout))
        finally:
            client.unsubscribe(sub)
            client.finish(iid, reply)

    async def services(self) -> list[base.Service]:
        return parsers.services(await self.client.request(commands.GET_SERVICE_LIST))

    async def call_log(self, since: int | None = None) -> list[base.CallLogEntry]:
        """See ``calllog.CallLogCompletion`` for when the stream counts as complete."""
        client, cfg = self.client, self._config
        completion = CallLogCompletion(chunk_size=cfg.call_log_chunk, idle=cfg.call_log_idle,
                                       first_timeout=client.timeout)
        entries: list[base.CallLogEntry] = []
        async with self._call_log_lock:
            sub = client.subscribe("callloginfo")
            iid, reply = client.begin(commands.call_log(since), subs=(sub,))
            client.failing_on_error(reply, sub)
            try:
                while not completion.done:
                    try:
                        el = await sub.get(completion.wait_time())
                    except MXTimeout:
                        completion.timed_out()
                        break
                    chunk = parsers.call_log_chunk(el)
                    entries.extend(chunk)
                    completion.add(len(chunk))
            finally:
                client.unsubscribe(sub)
                client.finish(iid, reply)
        if completion.ended_by == "no-reply":
            log.info("MX session %s: no call-log reply within %gs, taking the log as empty", self.label,
                     completion.first_timeout)
        elif completion.ended_by == "idle-gap":
            log.debug("MX session %s: call log ended on a chunk boundary (%d records)", self.label, completion.records)
        entries.sort(key=lambda e: e.record_id)
        return entries

    # -- call control --------------------------------------------------------------------------

    async def set_call_mode(self, mode: base.CallMode) -> None:
        self.client.send(commands.call_mode(mode))

    async def assign_device(self, name: str) -> str:
        """The reply is ``AssignDeviceInfo``: as the direct response (likely, spec §4.6) or, like
        MX Proxy expected it, as a message with any invoke id; both are accepted."""
        client = self.client
        sub = client.subscribe("AssignDeviceInfo")
        try:
            el = await client.request(commands.assign_device(name))
            if el.tag != "AssignDeviceInfo":
                el = await sub.get(client.timeout)
        finally:
            client.unsubscribe(sub)
        return parsers.assigned_device(el)

    async def make_call(self, calling: str, called: str) -> base.MakeCallResult:
        calling = calling or self.login_info.extension
        el = await self.client.request(commands.make_call(calling, called))
        return parsers.make_call_result(el, calling, called)

    async def answer_call(self, call_id: int, device: str) -> None:
        await self._call_control(commands.answer_call(call_id, device), CALL_EVENTS["answer"], call_id)

    async def transfer_call(self, call_id: int, device: str, to: str) -> None:
        await self._call_control(commands.single_step_transfer(call_id, device, to), CALL_EVENTS["transfer"], call_id)

    async def _call_control(self, xml: str, event_names: tuple[str, ...], call_id: int) -> Element | None:
        """Complete on the direct response, on the event of this call id, or on both (in either
        order); returns the event when it came. Without a monitor on this session the MX sends
        no call events, so once the response is there nothing more is awaited."""
        client = self.client
        sub = client.subscribe(event_names[0], lambda el: parsers.event_call_id(el) == call_id,
                               also=event_names[1:])
        try:
            _, event = await client.request_with_event(xml, sub, grace=self._config.call_reply_grace,
                                                       wait_for_event=bool(self._monitors))
        finally:
            client.unsubscribe(sub)
        return event

    async def _call_with_event(self, xml: str, event_name: str, call_id: int,
                               parse: Callable[[Element], base.CallEvent], fallback: base.CallEvent) -> base.CallEvent:
        """The event of this call id decoded, or (only a response came) ``fallback``, built from
        the request."""
        event = await self._call_control(xml, (event_name,), call_id)
        return parse(event) if event is not None else fallback

    async def clear_connection(self, call_id: int, device: str) -> base.ConnectionCleared:
        event = await self._call_with_event(
            commands.clear_connection(call_id, device), "ConnectionClearedEvent", call_id, parsers.connection_cleared,
            base.ConnectionCleared(call_id=call_id, device_id=device, releasing_device=device))
        return event  # type: ignore[return-value]

    async def hold_call(self, call_id: int, device: str) -> base.Held:
        event = await self._call_with_event(
            commands.hold_call(call_id, device), "HeldEvent", call_id, parsers.held,
            base.Held(call_id=call_id, device_id=device, holding_device=device))
        return event  # type: ignore[return-value]

    async def retrieve_call(self, call_id: int, device: str) -> base.Retrieved:
        event = await self._call_with_event(
            commands.retrieve_call(call_id, device), "RetrievedEvent", call_id, parsers.retrieved,
            base.Retrieved(call_id=call_id, device_id=device, retrieving_device=device))
        return event  # type: ignore[return-value]

    async def start_recording(self, call_id: int, device: str, group: str = "") -> None:
        await self._call_control(commands.recording(True, call_id, device, group), CALL_EVENTS["recording"], call_id)

    async def stop_recording(self, call_id: int, device: str, group: str = "") -> None:
        await self._call_control(commands.recording(False, call_id, device, group), CALL_EVENTS["recording"], call_id)

    # -- voicemail -----------------------------------------------------------------------------

    async def voicemails(self, media_type: str | None = None) -> list[base.Voicemail]:
        el = await self.client.request(commands.mail_list(self.login_info.extension, media_type))
        return parsers.voicemails(el, media_type or "VoiceMail")

    async def download_voicemail(self, mail_id: str, media_type: str | None = None) -> ZultysVoicemailDownload:
        first = await fetch_chunk(self.client, mail_id, media_type, next_chunk=False)
        return ZultysVoicemailDownload(self.client, mail_id, media_type, first)

    async def delete_voicemail(self, mail_id: str, media_type: str | None = None) -> None:
        await self.client.request(commands.mail_delete(mail_id, media_type))

    async def set_voicemail_read(self, mail_id: str, read: bool, media_type: str | None = None) -> None:
        await self.client.request(commands.mail_set_read(mail_id, read, media_type))

    async def set_voicemail_note(self, mail_id: str, note: str, media_type: str | None = None) -> None:
        await self.client.request(commands.mail_note(mail_id, note, media_type))

    # -- conferences ---------------------------------------------------------------------------

    async def conferences(self) -> list[base.Conference]:
        return parsers.conferences(await self.client.request(commands.conference_list(self.login_info.user_id)))

    async def conference_server_info(self) -> base.ConferenceServerInfo:
        return parsers.conference_server_info(await self.client.request(commands.GET_CONF_SERVER_INFO))

    async def _conference_with_event(self, xml: str, event_name: str, request: base.Conference) -> base.Conference:
        """Direct response first (it may carry the conference id), then the Conf*Event of that
        conference, decoded over the request (what MX Proxy returns). Events are collected from
        before the command is written and matched once the id is known."""
        client = self.client
        sub = client.subscribe(event_name)
        try:
            reply = await client.request(xml, subs=(sub,))
            conf_id = parsers.conference_id(reply) or request.conf_id
            loop = asyncio.get_running_loop()
            deadline = loop.time() + client.timeout
            while True:
                try:
                    el = await sub.get(max(0.0, deadline - loop.time()))
                except MXTimeout:
                    if not conf_id:
                        raise
                    log.warning("MX session %s: no %s for conference %s; answering from the request",
                                self.label, event_name, conf_id)
                    return dataclasses.replace(request, conf_id=conf_id)
                event_id = parsers.conference_id(el)
                if (conf_id and event_id == conf_id) or (not conf_id and parsers.conference_overlay(
                        base.Conference(), el).name == request.name):
                    return parsers.conference_overlay(request, el)
        finally:
            client.unsubscribe(sub)

    def _with_owner(self, conference: base.Conference) -> base.Conference:
        if conference.owner_id:
            return conference
        return dataclasses.replace(conference, owner_id=self.login_info.user_id)

    async def create_conference(self, conference: base.Conference) -> base.Conference:
        request = dataclasses.replace(self._with_owner(conference), conf_id="")
        return await self._conference_with_event(commands.create_conference(request), "ConfAddEvent", request)

    async def update_conference(self, conference: base.Conference) -> base.Conference:
        request = self._with_owner(conference)
        return await self._conference_with_event(commands.update_conference(request), "ConfUpdEvent", request)

    async def delete_conference(self, conf_id: str) -> None:
        """Completes on the direct response; the ``ConfDelEvent`` carries nothing we need."""
        await self.client.request(commands.delete_conference(conf_id))

    async def join_conference(self, call_id: str, access_id: int) -> None:
        await self.client.request(commands.join_conference(call_id, access_id))

    async def conference_from_call(self, call_id: int, owner_call_id: int) -> None:
        await self._call_control(commands.conference_from_call(call_id, self.login_info.user_id, owner_call_id or call_id),
                                 CALL_EVENTS["conference"], call_id)

    # -- presence ------------------------------------------------------------------------------

    async def set_presence(self, status: str, note: str | None = None) -> None:
        self.client.send(commands.presence(status, note))


def _page_index(index: int) -> Callable[[Element], bool]:
    """Accept the page we asked for (a late page of an earlier, timed-out request is skipped)."""

    def matches(el: Element) -> bool:
        return "index" not in el.attrib or attr_int(el, "index", -1) == index

    return matches
