"""One client connection to the simulated MX: read frames, answer commands, carry events.

A session is a plain object driven by one task (``run``). Commands are handled synchronously
in arrival order; a command the control API asked to delay is handled in a small task of its
own so the session keeps reading. Anything that breaks the framing or is not safe XML closes
this connection only.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable
from xml.etree.ElementTree import Element

from mxproxy.connectors.errors import MXProtocolError
from mxproxy.connectors.zultys.framing import EVENT_ID, KEEPALIVE_FRAME, FrameError, encode_frame, read_frame
from mxproxy.connectors.zultys.xml import attr_int, bool_of, int_of, parse, parse_bool, text_of
from mxproxy.simulator import messages as msg
from mxproxy.simulator.calls import Call, CallError
from mxproxy.simulator.fixture import MEDIA_TYPES, Conference, MailItem, SimUser

if TYPE_CHECKING:
    from mxproxy.simulator.server import Simulator

log = logging.getLogger("mxproxy.simulator")

__all__ = ["Session", "SessionInfo", "password_hash"]

COMMAND_HISTORY = 1000
#: Commands whose reply follows quirk ``call_control_reply`` (and whose events ``call_event_invoke_id``).
CALL_CONTROL = frozenset({"ClearConnection", "HoldCall", "RetrieveCall", "AnswerCall", "SingleStepTransferCall",
                          "StartRecording", "StopRecording"})


def password_hash(password: str) -> str:
    """What clients send in ``<pwd>``: base64(sha1(password)) plus a line feed (spec §2.1)."""
    return base64.b64encode(hashlib.sha1(password.encode("utf-8")).digest()).decode("ascii") + "\n"


@dataclass(frozen=True)
class SessionInfo:
    """A snapshot of one connection (live or closed) for tests and the control API."""

    id: int
    login: str
    ext: str
    jid: int
    kind: str  # "User" / "Server" ("" before login)
    logged_in: bool
    active: bool
    monitors: dict[int, str]
    commands: list[str]
    peer: str
    attrs: dict[str, str] = field(default_factory=dict)
    assigned_device: str = ""
    call_mode: dict[str, str] = field(default_factory=dict)
    connected_at: float = 0.0
    closed_at: float | None = None
    ab_notify: bool = False  # MonitorStartAb is in effect
    tls_resumed: bool = False  # the client resumed an earlier TLS session (no certificate sent)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "login": self.login, "ext": self.ext, "jid": str(self.jid), "kind": self.kind,
            "loggedIn": self.logged_in, "active": self.active,
            "monitors": {str(k): v for k, v in self.monitors.items()}, "commands": list(self.commands),
            "peer": self.peer, "attrs": dict(self.attrs), "assignedDevice": self.assigned_device,
            "callMode": dict(self.call_mode), "connectedAt": self.connected_at, "closedAt": self.closed_at,
            "abNotify": self.ab_notify, "tlsResumed": self.tls_resumed,
        }


class _Refused(Exception):
    """Raised inside a handler to answer the command with CSTAErrorCode."""

    def __init__(self, error: tuple[str, str]) -> None:
        super().__init__(error[1])
        self.error = error


Handler = Callable[["Session", int, Element], None]


class Session:
    def __init__(self, sim: "Simulator", sid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sim = sim
        self.id = sid
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "")
        self.user: SimUser | None = None
        self.kind = ""
        self.attrs: dict[str, str] = {}
        self.monitors: dict[int, str] = {}
        self.commands: collections.deque[str] = collections.deque(maxlen=COMMAND_HISTORY)
        self.cursors: dict[int, int] = {}  # mail id -> last chunk number sent
        self.assigned_device = ""
        self.call_mode: dict[str, str] = {}
        self.ab_notify = False
        self.closed = False
        self.connected_at = time.time()
        self.closed_at: float | None = None
        ssl_object = writer.get_extra_info("ssl_object")
        self.tls_resumed = bool(ssl_object is not None and ssl_object.session_reused)
        self._delayed: set[asyncio.Task[None]] = set()
        self._keepalive: asyncio.TimerHandle | None = None

    # -- identity ------------------------------------------------------------------------------

    @property
    def login(self) -> str:
        return self.user.login if self.user else ""

    @property
    def ext(self) -> str:
        return self.user.ext if self.user and self.kind == "User" else ""

    def info(self) -> SessionInfo:
        return SessionInfo(
            id=self.id, login=self.login, ext=self.ext, jid=self.user.jid if self.user and self.kind == "User" else 0,
            kind=self.kind, logged_in=self.user is not None, active=not self.closed, monitors=dict(self.monitors),
            commands=list(self.commands), peer=self.peer, attrs=dict(self.attrs),
            assigned_device=self.assigned_device, call_mode=dict(self.call_mode),
            connected_at=self.connected_at, closed_at=self.closed_at, ab_notify=self.ab_notify,
            tls_resumed=self.tls_resumed,
        )

    # -- I/O -----------------------------------------------------------------------------------

    def send(self, invoke_id: int, xml: str) -> None:
        if self.closed:
            return
        rewrite = self.sim.dialect
        if rewrite is not None:
            xml = rewrite(xml)
        try:
            frame = encode_frame(invoke_id, xml)
        except FrameError:
            if self.sim.quirks.oversized_answer != "wrap" or not 0 <= invoke_id <= EVENT_ID:
                log.error("session %d: refusing to send an oversized %d-byte message", self.id, len(xml))
                return
            payload = xml.encode("utf-8")
            frame = b"\x00\x00" + ((len(payload) + 8) & 0xFFFF).to_bytes(2, "big") + b"%04d" % invoke_id + payload
        self.writer.write(frame)

    def send_event(self, xml: str) -> None:
        self.send(EVENT_ID, xml)

    def send_raw(self, data: bytes) -> None:
        if not self.closed:
            self.writer.write(data)

    def send_part(self, invoke_id: int, part: int, xml: str) -> None:
        """One part of a multi-part result (``ablist`` page, ``callloginfo`` chunk), on the
        invoke id quirk ``multipart_invoke_id`` says."""
        how = self.sim.quirks.multipart_invoke_id
        on_request = how == "request" or (how == "mixed" and part % 2 == 1)
        self.send(invoke_id if on_request else EVENT_ID, xml)

    def reply_call_control(self, invoke_id: int, xml: str) -> None:
        """The direct response of a call-control command, as quirk ``call_control_reply`` says
        (the events it caused are already queued behind the event gap)."""
        how = self.sim.quirks.call_control_reply
        if how == "event":
            return
        if how == "event-first":
            self.later(lambda: self.send(invoke_id, xml))
        else:
            self.send(invoke_id, xml)

    def _send_keepalive(self) -> None:
        self._keepalive = None
        if not self.closed:
            self.send_raw(KEEPALIVE_FRAME)
            self._keepalive = asyncio.get_running_loop().call_later(self.sim.quirks.server_keepalive,
                                                                    self._send_keepalive)

    def close(self, abort: bool = False) -> None:
        """Close the socket (``abort``: reset it without a TLS close_notify, like a dead network)."""
        if self.closed:
            return
        self.closed = True
        self.closed_at = time.time()
        for task in self._delayed:
            task.cancel()
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        try:
            if abort:
                self.writer.transport.abort()
            else:
                self.writer.close()
        except Exception:  # the transport may already be gone
            pass

    async def run(self) -> None:
        idle = self.sim.quirks.idle_timeout
        try:
            while not self.closed:
                if idle:
                    frame = await asyncio.wait_for(read_frame(self.reader), idle)
                else:
                    frame = await read_frame(self.reader)
                self._receive(frame.invoke_id, frame.payload)
                if not self.closed:
                    await self.writer.drain()
        except asyncio.TimeoutError:
            log.info("session %d (%s): idle for %ss, disconnecting", self.id, self.login or self.peer, idle)
        except FrameError as exc:
            log.warning("session %d (%s): bad frame, closing: %s", self.id, self.peer, exc)
        except MXProtocolError as exc:
            log.warning("session %d (%s): bad XML, closing: %s", self.id, self.peer, exc)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            self.close(abort=True)
            raise
        finally:
            self.close()
            self.sim._session_closed(self)

    # -- dispatch ------------------------------------------------------------------------------

    def _receive(self, invoke_id: int, payload: bytes) -> None:
        root = parse(payload)  # MXProtocolError closes the connection
        name = root.tag
        self.commands.append(name)
        if self.sim._dropped(name):
            return
        delay = self.sim._delay_for(name)
        if delay > 0:
            task = asyncio.get_running_loop().create_task(self._handle_later(delay, invoke_id, root))
            self._delayed.add(task)
            task.add_done_callback(self._delayed.discard)
            return
        self._handle(invoke_id, root)

    async def _handle_later(self, delay: float, invoke_id: int, root: Element) -> None:
        await asyncio.sleep(delay)
        if not self.closed:
            self._handle(invoke_id, root)

    def _handle(self, invoke_id: int, root: Element) -> None:
        name = root.tag
        if self.user is None and name not in ("loginRequest", "keepalive", "logout"):
            if self.sim.quirks.error_before_login:
                self.error(invoke_id, msg.NOT_LOGGED_IN)
            return
        handler = _HANDLERS.get(name)
        if name in CALL_CONTROL:
            self.sim.cause = (self, invoke_id)  # the requester's copies of the events it causes
        try:
            if handler is None:
                raise _Refused(msg.UNSUPPORTED)
            handler(self, invoke_id, root)
        except _Refused as exc:
            self.error(invoke_id, exc.error)
        except CallError as exc:
            self.error(invoke_id, (exc.category, exc.value))
        except Exception:  # a simulator bug must not look like a protocol answer nobody sent
            log.exception("session %d: handling %s failed", self.id, name)
            self.error(invoke_id, ("unspecified", "internalError"))
        finally:
            self.sim.cause = None

    def error(self, invoke_id: int, error: tuple[str, str]) -> None:
        q = self.sim.quirks
        self.send(invoke_id, msg.csta_error(*error, namespace=q.error_namespace, in_root=q.error_layout == "root"))

    def later(self, fn: Callable[[], None]) -> None:
        self.sim._after_gap(fn)

    def _own_device(self, given: str) -> str:
        return self.ext or given

    def _call_device(self, call_id: int, given: str) -> tuple[Call, str]:
        """The call and the device acting in it: the given device when it is a party, else the
        session user's extension (clients pass softphone names like ``sipPhone``)."""
        call = self.sim.model.get(call_id)
        if given and call.party(given) is not None:
            return call, given
        device = self.ext or given
        if call.party(device) is None:
            raise _Refused(msg.INVALID_DEVICE)
        return call, device

    # -- session -------------------------------------------------------------------------------

    def on_login(self, iid: int, el: Element) -> None:
        fx = self.sim.fixture
        login, pwd, kind = text_of(el, "userName"), text_of(el, "pwd"), el.get("type", "User")

        def fail(code: int, text: str) -> None:
            self.send(iid, msg.login_failed(code, text, fx.sn, fx.api_version))

        user = self.sim.find_user(login)
        if user is None:
            return fail(2, "Invalid user name or password")
        if pwd == password_hash(user.password) or pwd == password_hash(user.password).rstrip("\n") + "\r\n":
            if user.ldap:
                return fail(4, "Clear text password is required (LDAP authentication)")
        elif pwd != user.password:
            return fail(2, "Invalid user name or password")
        if kind not in ("User", "Server"):
            return fail(1, f"Unsupported login type {kind}")
        if kind == "Server" and not user.server:
            return fail(3, "Server login is not allowed for this user")
        if parse_bool(el.get("forced")):
            self.sim._force_out_others(user.login, keep=self)
        if self.user is not None:
            self.sim._forget_monitors(self)
        self.user, self.kind = user, kind
        self.attrs = {k: v for k, v in el.attrib.items()}
        self.sim._logged_in(self)
        q = self.sim.quirks
        self.send(iid, msg.login_ok(user, fx.sn, fx.api_version, server=kind == "Server", root=q.login_reply))
        if kind == "User" and q.presence_after_login:
            self.send_event(msg.presence(0, user.presence, user.presence_note))
        if q.server_keepalive and self._keepalive is None:
            self._keepalive = asyncio.get_running_loop().call_later(0, self._send_keepalive)

    def on_logout(self, iid: int, el: Element) -> None:
        self.close()

    def on_keepalive(self, iid: int, el: Element) -> None:
        pass  # accepted with any invoke id, never answered (spec §1.5)

    # -- monitors ------------------------------------------------------------------------------

    def on_monitor_start(self, iid: int, el: Element) -> None:
        device = text_of(el, "monitorObject/deviceObject").strip() or self.ext
        if not device or self.sim.person_by_ext(device) is None:
            raise _Refused(msg.INVALID_DEVICE)
        if self.kind == "User" and device != self.ext and self.sim.quirks.user_monitor_own_only:
            raise _Refused(msg.PRIVILEGE_VIOLATION)
        for ref, dev in self.monitors.items():
            if dev == device:
                break
        else:
            ref = self.sim._add_monitor(self, device)
        self.send(iid, msg.monitor_start_response(ref))

    def on_monitor_stop(self, iid: int, el: Element) -> None:
        ref = int_of(el, "monitorCrossRefID", -1)
        if ref not in self.monitors:
            raise _Refused(msg.INVALID_CROSS_REF)
        self.sim._remove_monitor(self, ref)
        self.send(iid, msg.empty("MonitorStopResponse"))

    def on_monitor_ab(self, iid: int, el: Element) -> None:
        """Address-book change notifications on/off for this session (spec §4.1, §5.9)."""
        if not self.sim.quirks.address_book_events:
            raise _Refused(msg.UNSUPPORTED)
        self.ab_notify = el.tag == "MonitorStartAb"
        self.send(iid, msg.empty(el.tag + "Response"))

    # -- iq: address book, call log, call mode -------------------------------------------------

    def on_iq(self, iid: int, el: Element) -> None:
        kind, what = el.get("type", ""), el.get("id", "")
        if kind == "get" and what == "addressbook":
            self._addressbook(iid, max(0, attr_int(el, "index", 0)), el.get("sortmode", "last"))
        elif kind == "get" and what == "calllog":
            self._calllog(iid, attr_int(el, "timestamp", -1))
        elif kind == "set" and what == "mode":
            self.call_mode = {k: v for k, v in el.attrib.items() if k in ("mode", "ringdelay", "vmdelay")}
            self.call_mode["address"] = text_of(el, "address")
            if self.sim.quirks.mode_reply:
                self.send(iid, msg.mode_result())
        # roster/buddy and other iq: nothing known to answer; ignored like a real fire-and-forget

    def _addressbook(self, iid: int, index: int, sortmode: str) -> None:
        people = self.sim._sorted_directory(sortmode)
        size = self.sim.quirks.ab_page_size
        page = people[index * size:(index + 1) * size]
        self.send_part(iid, index, msg.ablist(len(people), index, page))

    def _calllog(self, iid: int, since: int) -> None:
        q = self.sim.quirks
        entries = sorted(self.sim.fixture.call_logs.get(self.login, []), key=lambda e: e.record_id)
        if since > 0:
            entries = [e for e in entries if e.time >= since]
        if not entries:
            if q.empty_call_log == "empty":
                self.send_part(iid, 0, msg.callloginfo([]))
            return
        n = q.call_log_chunk
        for part, start in enumerate(range(0, len(entries), n)):
            self.send_part(iid, part, msg.callloginfo(entries[start:start + n]))
        if q.call_log_end_marker and len(entries) % n == 0:
            self.send_part(iid, -(-len(entries) // n), msg.callloginfo([]))

    def on_services(self, iid: int, el: Element) -> None:
        self.send(iid, msg.service_list(self.sim.fixture.services))

    # -- call control --------------------------------------------------------------------------

    def on_assign_device(self, iid: int, el: Element) -> None:
        device = text_of(el, "deviceID").strip()
        if not device:
            raise _Refused(msg.INVALID_DEVICE)
        self.assigned_device = device
        self.send(iid, msg.assign_device_info(device))

    def on_make_call(self, iid: int, el: Element) -> None:
        calling = text_of(el, "callingDevice").strip() or self.ext
        called = text_of(el, "calledDirectoryNumber").strip()
        if not calling:
            raise _Refused(("operation", "invalidCallingDevice"))
        if not called:
            raise _Refused(("operation", "invalidCalledDevice"))
        owner = self.ext or (calling if self.sim.person_by_ext(calling) else "")
        # the model's events wait behind the event gap, so the response below leaves first
        call = self.sim.model.make_call(owner, calling, called)
        self.send(iid, msg.make_call_response(call.call_id, calling, called))

    def on_answer_call(self, iid: int, el: Element) -> None:
        call, device = self._call_device(int_of(el, "callToBeAnswered/callID", -1), text_of(el, "callToBeAnswered/deviceID"))
        self.sim.model.answer(call.call_id, device)
        self.reply_call_control(iid, msg.empty("AnswerCallResponse"))

    def on_clear_connection(self, iid: int, el: Element) -> None:
        call, device = self._call_device(int_of(el, "connectionToBeCleared/callID", -1),
                                         text_of(el, "connectionToBeCleared/deviceID"))
        self.sim.model.clear(call.call_id, device)
        self.reply_call_control(iid, msg.empty("ClearConnectionResponse"))

    def on_hold(self, iid: int, el: Element) -> None:
        call, device = self._call_device(int_of(el, "callToBeHeld/callID", -1), text_of(el, "callToBeHeld/deviceID"))
        self.sim.model.hold(call.call_id, device)
        self.reply_call_control(iid, msg.empty("HoldCallResponse"))

    def on_retrieve(self, iid: int, el: Element) -> None:
        call, device = self._call_device(int_of(el, "callToBeRetrieved/callID", -1),
                                         text_of(el, "callToBeRetrieved/deviceID"))
        self.sim.model.retrieve(call.call_id, device)
        self.reply_call_control(iid, msg.empty("RetrieveCallResponse"))

    def on_single_step_transfer(self, iid: int, el: Element) -> None:
        call, device = self._call_device(int_of(el, "activeCall/callID", -1), text_of(el, "activeCall/deviceID"))
        to = text_of(el, "transferredTo").strip()
        if not to:
            raise _Refused(("operation", "invalidDestination"))
        new = self.sim.model.single_step_transfer(call.call_id, device, to)
        self.reply_call_control(iid, msg.transfer_response(new.call_id, to))

    def on_deflect(self, iid: int, el: Element) -> None:
        call, device = self._call_device(int_of(el, "callToBeDiverted/callID", -1), text_of(el, "callToBeDiverted/deviceID"))
        to = text_of(el, "newDestination").strip()
        if not to:
            raise _Refused(("operation", "invalidDestination"))
        self.sim.model.deflect(call.call_id, device, to)
        self.send(iid, msg.empty("DeflectCallResponse"))

    def on_transfer(self, iid: int, el: Element) -> None:
        held, device = self._call_device(int_of(el, "heldCall/callID", -1), text_of(el, "heldCall/deviceID"))
        active, _ = self._call_device(int_of(el, "activeCall/callID", -1), text_of(el, "activeCall/deviceID"))
        self.sim.model.transfer(held.call_id, active.call_id, device)
        self.send(iid, msg.empty("TransferCallResponse"))

    def on_park(self, iid: int, el: Element) -> None:
        call, device = self._call_device(int_of(el, "parking/callID", -1), text_of(el, "parking/deviceID"))
        self.sim.model.park(call.call_id, device)
        self.send(iid, msg.empty("ParkCallResponse"))

    def on_snapshot(self, iid: int, el: Element) -> None:
        device = text_of(el, "snapshotObject").strip() or self.ext
        if self.sim.person_by_ext(device) is None:
            raise _Refused(msg.INVALID_DEVICE)
        rows = []
        for call in self.sim.model.calls_of(device):
            party = call.party(device)
            rows.append((call.call_id, device, party.state if party else "null"))
        self.send(iid, msg.snapshot_device(rows))

    def on_get_agent_state(self, iid: int, el: Element) -> None:
        self.send(iid, msg.agent_state(True, True))

    def on_set_agent_state(self, iid: int, el: Element) -> None:
        self.send(iid, msg.empty("SetAgentStateResponse"))

    def on_recording(self, iid: int, el: Element) -> None:
        start = el.tag == "StartRecording"
        call, device = self._call_device(int_of(el, "Call/callID", -1), text_of(el, "Call/deviceID"))
        given = text_of(el, "Call/deviceID").strip() or device
        self.sim.model.set_recording(call.call_id, given, start, self.sim.quirks.recording_layout,
                                     monitored=self.ext or device)
        self.reply_call_control(iid, msg.empty(el.tag + "Response"))
        if not start and self.user is not None and self.kind == "User":
            user = self.user
            self.later(lambda: self.sim._new_recording(user, call))

    # -- presence ------------------------------------------------------------------------------

    def on_presence(self, iid: int, el: Element) -> None:
        if self.user is not None:
            status = el.get("status", "").strip() or self.user.presence
            self.sim._change_presence(self.user, status, text_of(el, "presenceNote"))

    # -- mailboxes -----------------------------------------------------------------------------

    def _mail_allowed(self) -> None:
        if self.sim.quirks.monitor_required_for_mail and not self.monitors:
            raise _Refused(msg.NO_MONITOR)

    @staticmethod
    def _media(el: Element, default: str | None) -> str | None:
        media = text_of(el, "mediaType").strip()
        if not media:
            return default
        if media not in MEDIA_TYPES:
            raise _Refused(msg.INVALID_VALUE)
        return media

    def _find_mail(self, mail_id: int, media: str | None) -> MailItem | None:
        for item in self.sim.fixture.mailboxes.get(self.login, []):
            if item.mail_id == mail_id and (media is None or item.media_type == media):
                return item
        return None

    def on_mail_list(self, iid: int, el: Element) -> None:
        self._mail_allowed()
        default = None if self.sim.quirks.mail_list_default == "all" else self.sim.quirks.mail_list_default
        media = self._media(el, default)
        items = sorted((m for m in self.sim.fixture.mailboxes.get(self.login, []) if media is None or m.media_type == media),
                       key=lambda m: m.mail_id)
        self.send(iid, msg.mail_list(items, with_media_type=self.sim.quirks.mail_media_type))

    def on_mail_delete(self, iid: int, el: Element) -> None:
        self._mail_allowed()
        item = self._find_mail(int_of(el, "mailId", -1), self._media(el, None))
        if item is not None:
            self.sim.fixture.mailboxes[self.login].remove(item)
            self.cursors.pop(item.mail_id, None)
        self.send(iid, msg.empty("MailDeleteIncomingResponse"))  # unknown ids succeed too (spec §4.15.2)

    def on_mail_status(self, iid: int, el: Element) -> None:
        self._mail_allowed()
        item = self._find_mail(int_of(el, "mailId", -1), self._media(el, None))
        if item is None:
            raise _Refused(msg.UNKNOWN_MAIL)
        item.read = bool_of(el, "read")
        self.send(iid, msg.empty("MailSetStatusResponse"))

    def on_mail_note(self, iid: int, el: Element) -> None:
        self._mail_allowed()
        item = self._find_mail(int_of(el, "mailId", -1), self._media(el, None))
        if item is None:
            raise _Refused(msg.UNKNOWN_MAIL)
        item.note = text_of(el, "note")
        self.send(iid, msg.empty("UpdateVmNoteResponse"))

    def on_mail_receive(self, iid: int, el: Element) -> None:
        self._mail_allowed()
        mail_id = int_of(el, "faxSessionID", -1)
        item = self._find_mail(mail_id, self._media(el, None))
        if item is None:
            raise _Refused(msg.UNKNOWN_MAIL)
        data = item.content(self.sim.fixture.base_dir)
        size = self.sim.quirks.mail_chunk_size
        total = max(1, -(-len(data) // size))
        if el.find("nextChunk") is None:
            number = 1
        else:
            last = self.cursors.get(mail_id)
            if last is None:
                raise _Refused(msg.NO_DOWNLOAD)
            number = last + 1
            if number > total:
                if self.sim.quirks.next_chunk_past_end == "error":
                    raise _Refused(msg.NO_DOWNLOAD)
                number = total
        self.cursors[mail_id] = number
        chunk = msg.mail_chunk(item, number, total, data[(number - 1) * size:number * size])
        self.send(EVENT_ID if self.sim.quirks.mail_chunk_invoke_id == "event" else iid, chunk)

    def on_mail_cancel(self, iid: int, el: Element) -> None:
        self._mail_allowed()
        self.cursors.pop(int_of(el, "mailId", -1), None)
        self.send(iid, msg.empty("MailCancelReceiveResponse"))

    # -- conferences ---------------------------------------------------------------------------

    def _conference_from(self, el: Element, base: Conference | None = None) -> Conference:
        c = Conference(**vars(base)) if base else Conference()
        for tag, attr in (("name", "name"), ("description", "description"), ("type", "type"), ("ws", "ws"),
                          ("wsType", "ws_type")):
            if el.find(tag) is not None:
                setattr(c, attr, text_of(el, tag))
        for tag, attr in (("ownerId", "owner_id"), ("accessId", "access_id"), ("startDate", "start_date"),
                          ("duration", "duration")):
            if el.find(tag) is not None:
                setattr(c, attr, int_of(el, tag))
        for tag, attr in (("waitForOwner", "wait_for_owner"), ("delOnOwnerLeave", "del_on_owner_leave")):
            if el.find(tag) is not None:
                setattr(c, attr, bool_of(el, tag))
        if not c.owner_id and self.user is not None and self.kind == "User":
            c.owner_id = self.user.jid
        return c

    def on_conf_list(self, iid: int, el: Element) -> None:
        # every conference is listed: ownerId is the asking user's JID in MX Proxy, and filtering
        # by it would hide conferences created for another owner (real behaviour unknown)
        self.send(iid, msg.conf_list(self.sim.fixture.conferences))

    def on_conf_server_info(self, iid: int, el: Element) -> None:
        self.send(iid, msg.conf_server_info(self.sim.fixture.conf_server))

    def on_conf_create(self, iid: int, el: Element) -> None:
        conf = self._conference_from(el)
        conf.conf_id = self.sim._next_conf_id()
        self.sim.fixture.conferences.append(conf)
        self.send(iid, msg.element_response("CreateConferenceResponse", conf.conf_id))
        self.later(lambda: self.send_event(msg.conf_event("ConfAddEvent", conf)))

    def _conference(self, conf_id: str) -> Conference:
        for c in self.sim.fixture.conferences:
            if c.conf_id == conf_id:
                return c
        raise _Refused(msg.UNKNOWN_CONFERENCE)

    def on_conf_update(self, iid: int, el: Element) -> None:
        existing = self._conference(text_of(el, "confId").strip())
        updated = self._conference_from(el, existing)
        updated.conf_id = existing.conf_id
        confs = self.sim.fixture.conferences
        confs[confs.index(existing)] = updated
        self.send(iid, msg.element_response("UpdateConferenceResponse", updated.conf_id))
        self.later(lambda: self.send_event(msg.conf_event("ConfUpdEvent", updated)))

    def on_conf_delete(self, iid: int, el: Element) -> None:
        conf = self._conference(text_of(el, "confId").strip())
        self.sim.fixture.conferences.remove(conf)
        self.send(iid, msg.element_response("DeleteConferenceResponse", conf.conf_id))
        self.later(lambda: self.send_event(msg.conf_event("ConfDelEvent", conf)))

    def on_conf_join(self, iid: int, el: Element) -> None:
        self.sim.model.get(int_of(el, "callId", -1))
        access = int_of(el, "accessId", -1)
        if not any(c.access_id == access for c in self.sim.fixture.conferences):
            raise _Refused(msg.UNKNOWN_CONFERENCE)
        self.send(iid, msg.empty("JoinConfResponse"))

    def on_conf_from_calls(self, iid: int, el: Element) -> None:
        self.sim.model.get(int_of(el, "callId", -1))
        owner_call = int_of(el, "ownerCallId", 0)
        if owner_call:
            self.sim.model.get(owner_call)
        self.send(iid, msg.empty("CreateConfFromCallsResponse"))


_HANDLERS: dict[str, Handler] = {
    "loginRequest": Session.on_login,
    "logout": Session.on_logout,
    "keepalive": Session.on_keepalive,
    "MonitorStart": Session.on_monitor_start,
    "MonitorStop": Session.on_monitor_stop,
    "MonitorStartAb": Session.on_monitor_ab,
    "MonitorStopAb": Session.on_monitor_ab,
    "iq": Session.on_iq,
    "GetServiceList": Session.on_services,
    "AssignDevice": Session.on_assign_device,
    "MakeCall": Session.on_make_call,
    "AnswerCall": Session.on_answer_call,
    "ClearConnection": Session.on_clear_connection,
    "HoldCall": Session.on_hold,
    "RetrieveCall": Session.on_retrieve,
    "SingleStepTransferCall": Session.on_single_step_transfer,
    "DeflectCall": Session.on_deflect,
    "TransferCall": Session.on_transfer,
    "ParkCall": Session.on_park,
    "SnapshotDevice": Session.on_snapshot,
    "GetAgentState": Session.on_get_agent_state,
    "SetAgentState": Session.on_set_agent_state,
    "StartRecording": Session.on_recording,
    "StopRecording": Session.on_recording,
    "presence": Session.on_presence,
    "MailGetListIncoming": Session.on_mail_list,
    "MailDeleteIncoming": Session.on_mail_delete,
    "MailSetStatus": Session.on_mail_status,
    "UpdateVmNote": Session.on_mail_note,
    "MailReceiveIncoming": Session.on_mail_receive,
    "MailCancelReceive": Session.on_mail_cancel,
    "GetConfList": Session.on_conf_list,
    "GetConfServerInfo": Session.on_conf_server_info,
    "CreateConference": Session.on_conf_create,
    "UpdateConference": Session.on_conf_update,
    "DeleteConference": Session.on_conf_delete,
    "JoinConf": Session.on_conf_join,
    "CreateConfFromCalls": Session.on_conf_from_calls,
}
