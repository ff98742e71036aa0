"""``Simulator``: the MX server (CSTA over TLS), its registries and the scripting API.

One asyncio server, one task per connection, no threads. Monitors are indexed by device so an
event reaches every session watching an involved extension in O(watchers). Events are delivered
through a single ordered timer lane (``_after_gap``): everything a command causes goes out after
its direct response, in the order it was produced.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import ssl
import time
from typing import Any, Callable, Iterable, Sequence

from mxproxy.connectors.zultys.framing import EVENT_ID, encode_frame
from mxproxy.simulator import messages as msg
from mxproxy.simulator.audio import tone_wav
from mxproxy.simulator.calls import Call, CallError, CallModel
from mxproxy.simulator.dialect import dialect
from mxproxy.simulator.fixture import (
    MEDIA_TYPES,
    CallLogEntry,
    DirectoryEntry,
    Fixture,
    MailItem,
    Person,
    SimUser,
    demo_fixture,
)
from mxproxy.simulator.quirks import Quirks
from mxproxy.simulator.session import Session, SessionInfo
from mxproxy.simulator.tls import CertPair, fingerprint, load_pair, self_signed, server_context

log = logging.getLogger("mxproxy.simulator")

__all__ = ["Simulator", "SimulatorError", "GARBAGE_KINDS"]

CLOSED_HISTORY = 10_000
#: Address-book fields the scripting API may set (``Person`` attribute names).
DIRECTORY_FIELDS = ("first_name", "last_name", "home_phone", "cell_phone", "email", "did", "exchange_id")
GARBAGE_KINDS = ("xml", "header", "length")


class SimulatorError(Exception):
    """A scripting/control request that cannot be done; ``status`` is the control API's answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Simulator:
    def __init__(
        self,
        fixture: Fixture | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        control: str | None = None,
        quirks: Quirks | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None:
        self.fixture = fixture if fixture is not None else demo_fixture()
        self.host = host
        self.port = port
        self.quirks = quirks or Quirks()
        #: (session, invoke id) of the call-control command being handled: the events it causes
        #: reach that session as quirks ``call_control_reply`` / ``call_event_invoke_id`` say.
        self.cause: tuple[Session, int] | None = None
        self._dialect: tuple[Quirks, Callable[[str], str] | None] | None = None
        self._control_address = control or None
        self._certfile, self._keyfile = certfile, keyfile
        self._cert: CertPair | None = None
        self._tls_options: dict[str, Any] = {}
        self._server: asyncio.base_events.Server | None = None
        self._control: Any = None
        self.model = CallModel(sn=self.fixture.sn, emit=self._emit, name_of=self._name_of, on_end=self._log_call)
        self._last_record_id = 0
        self._sessions: dict[int, Session] = {}
        self._tasks: dict[int, asyncio.Task[Any]] = {}
        self._closed: collections.deque[SessionInfo] = collections.deque(maxlen=CLOSED_HISTORY)
        self._by_login: dict[str, set[Session]] = {}
        self._monitors: dict[str, dict[int, Session]] = {}  # device -> cross ref -> session
        self._session_ids = itertools.count(1)
        self._cross_refs = itertools.count(1)
        self._delays: dict[str | None, float] = {}
        self._drops: set[str | None] = set()
        self._last_when = 0.0
        self._index_key: tuple[int, ...] = ()
        self._users: dict[str, SimUser] = {}
        self._exts: dict[str, Person] = {}
        self._sorted: dict[str, list[Person]] = {}
        self._running = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._cert = load_pair(self._certfile, self._keyfile) if self._certfile else self_signed()
        self._tls_options = {"max_version": self.quirks.tls_version, "resumption": self.quirks.tls_resumption}
        # a server that never resumes gets a fresh context (empty session cache) per connection
        ctx = server_context(self._cert, **self._tls_options) if self.quirks.tls_resumption else None
        self._server = await asyncio.start_server(self._accept, self.host, self.port, ssl=ctx, backlog=4096,
                                                  ssl_handshake_timeout=30 if ctx is not None else None)
        self.port = self._server.sockets[0].getsockname()[1]
        self._running = True
        if self._control_address:
            from mxproxy.simulator.control import ControlServer

            host, _, port = self._control_address.rpartition(":")
            self._control = ControlServer(self, host or "127.0.0.1", int(port or 0))
            await self._control.start()
        log.info("MX simulator listening on %s:%d (TLS)", self.host, self.port)

    async def stop(self) -> None:
        self._running = False
        if self._control is not None:
            await self._control.stop()
            self._control = None
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions.values()):
            session.close()
        tasks = list(self._tasks.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2)
            except asyncio.TimeoutError:
                pass
            self._server = None

    async def __aenter__(self) -> "Simulator":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def control_url(self) -> str | None:
        return self._control.url if self._control is not None else None

    @property
    def cert_pair(self) -> CertPair:
        if self._cert is None:
            raise SimulatorError("the simulator is not started")
        return self._cert

    @property
    def cert_pem(self) -> bytes:
        if self._cert is None:
            raise SimulatorError("the simulator is not started")
        return self._cert.cert_pem

    @property
    def cert_fingerprint(self) -> str:
        return fingerprint(self.cert_pem)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if writer.get_extra_info("sslcontext") is None:  # quirk tls_resumption=false
            try:
                await writer.start_tls(server_context(self.cert_pair, **self._tls_options), ssl_handshake_timeout=30)
            except (OSError, ssl.SSLError, asyncio.TimeoutError):
                writer.transport.abort()
                return
        session = Session(self, next(self._session_ids), reader, writer)
        if not self._running:
            session.close(abort=True)
            return
        self._sessions[session.id] = session
        task = asyncio.current_task()
        if task is not None:
            self._tasks[session.id] = task
        try:
            await session.run()
        finally:
            self._tasks.pop(session.id, None)

    # -- registries (used by sessions) ---------------------------------------------------------

    def _reindex(self) -> None:
        fx = self.fixture
        key = (id(fx.users), len(fx.users), id(fx.directory), len(fx.directory))
        if key != self._index_key:
            self._users = {u.login.lower(): u for u in fx.users}
            self._exts = {p.ext: p for p in fx.people() if p.ext}
            self._sorted = {}
            self._index_key = key

    def find_user(self, login: str) -> SimUser | None:
        self._reindex()
        return self._users.get(login.strip().lower())

    def person_by_ext(self, ext: str) -> Person | None:
        self._reindex()
        return self._exts.get(ext)

    def _name_of(self, device: str) -> str:
        person = self.person_by_ext(device)
        return person.display_name if person is not None else ""

    def _sorted_directory(self, sortmode: str) -> list[Person]:
        self._reindex()
        mode = "first" if sortmode == "first" else "last"
        people = self._sorted.get(mode)
        if people is None:
            if mode == "first":
                key: Callable[[Person], tuple[str, ...]] = lambda p: (p.first_name.lower(), p.last_name.lower(), p.ext)
            else:
                key = lambda p: (p.last_name.lower(), p.first_name.lower(), p.ext)
            people = self._sorted[mode] = sorted(self.fixture.people(), key=key)
        return people

    def _logged_in(self, session: Session) -> None:
        self._by_login.setdefault(session.login, set()).add(session)

    def _add_monitor(self, session: Session, device: str) -> int:
        ref = next(self._cross_refs)
        session.monitors[ref] = device
        self._monitors.setdefault(device, {})[ref] = session
        return ref

    def _remove_monitor(self, session: Session, ref: int) -> None:
        device = session.monitors.pop(ref, None)
        if device is not None:
            watchers = self._monitors.get(device)
            if watchers is not None:
                watchers.pop(ref, None)
                if not watchers:
                    del self._monitors[device]

    def _forget_monitors(self, session: Session) -> None:
        for ref in list(session.monitors):
            self._remove_monitor(session, ref)
        if session.user is not None:
            peers = self._by_login.get(session.login)
            if peers is not None:
                peers.discard(session)
                if not peers:
                    del self._by_login[session.login]

    def _session_closed(self, session: Session) -> None:
        self._forget_monitors(session)
        if self._sessions.pop(session.id, None) is not None:
            self._closed.append(session.info())

    def _delay_for(self, command: str) -> float:
        if not self._delays:
            return 0.0
        return self._delays.get(command, self._delays.get(None, 0.0))

    def _dropped(self, command: str) -> bool:
        return bool(self._drops) and (command in self._drops or None in self._drops)

    def _next_conf_id(self) -> str:
        numeric = [int(c.conf_id) for c in self.fixture.conferences if c.conf_id.isdigit()]
        return str(max(numeric, default=0) + 1)

    # -- event delivery ------------------------------------------------------------------------

    def _after_gap(self, fn: Callable[[], None], delay: float | None = None) -> None:
        """Run ``fn`` after the event gap, strictly after everything queued before it."""
        loop = asyncio.get_running_loop()
        when = max(loop.time() + (self.quirks.event_gap if delay is None else delay), self._last_when + 1e-6)
        self._last_when = when
        loop.call_at(when, self._safely, fn)

    @staticmethod
    def _safely(fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:  # a broken event must not kill the loop's timer
            log.exception("simulator: delivering an event failed")

    @property
    def dialect(self) -> Callable[[str], str] | None:
        """The XML rewrite of the current quirks (None: messages go out as built)."""
        cached = self._dialect
        if cached is None or cached[0] is not self.quirks:
            cached = self._dialect = (self.quirks, dialect(self.quirks))
        return cached[1]

    def _emit(self, devices: Iterable[str], build: Callable[[int], str]) -> None:
        wanted = list(dict.fromkeys(d for d in devices if d))
        cause = self.cause
        self._after_gap(lambda: self._deliver(wanted, build, cause))

    def _deliver(self, devices: list[str], build: Callable[[int], str],
                 cause: tuple[Session, int] | None = None) -> None:
        for device in devices:
            for ref, session in list(self._monitors.get(device, {}).items()):
                if cause is not None and session is cause[0]:
                    if self.quirks.call_control_reply == "response":
                        continue
                    if self.quirks.call_event_invoke_id == "request":
                        session.send(cause[1], build(ref))
                        continue
                session.send_event(build(ref))

    # -- call log (spec §4.3) --------------------------------------------------------------------

    def _next_record_id(self, log: list[CallLogEntry]) -> int:
        """Record numbers are global and only grow (clients sort by them); the fixture may have
        been edited since the last record, so its newest record of this user counts too."""
        if not self._last_record_id:
            self._last_record_id = max((e.record_id for entries in self.fixture.call_logs.values() for e in entries),
                                       default=0)
        self._last_record_id = max(self._last_record_id, log[-1].record_id if log else 0) + 1
        return self._last_record_id

    def _log_call(self, call: Call, devices: Sequence[str] | None = None) -> None:
        """The MX writes a ``callinfo`` record for each of its users in a call when their leg ends
        (``devices``: only the legs of those devices; None: every party). Field choices follow the
        README samples: an outgoing record has no connect time unless answered; a missed incoming
        one has the ring start as connect time and ``selfLegType`` 9; answered legs and outgoing
        calls use 1 (the code tables are unknown, spec §4.3)."""
        now = int(time.time())
        done: set[str] = set()
        for device in call.devices():
            user = self.person_by_ext(device)
            party = call.party(device)
            if not isinstance(user, SimUser) or party is None or user.login in done:
                continue
            if devices is not None and device not in devices and party.device not in devices:
                continue
            done.add(user.login)
            outgoing = party is call.calling
            answered = bool(call.answered_at) and party.state != "alerting"
            missed = not outgoing and not answered
            other = self.person_by_ext(call.other(party).device)
            if answered:
                connect = int(call.answered_at)
            else:
                connect = 0 if outgoing else int(call.started_at)
            log = self.fixture.call_logs.setdefault(user.login, [])
            log.append(CallLogEntry(
                record_id=self._next_record_id(log), direction="outgoing" if outgoing else "incoming", missed=missed,
                gcid=call.gcid, connect_timestamp=connect, disconnect_timestamp=max(now, connect),
                calling_party_no=call.calling.device, original_called_party_no=call.original_called or call.called.device,
                first_name=other.first_name if other else "", last_name=other.last_name if other else "",
                extension=other.ext if other else "", call_type=1, leg_type=1, self_leg_type=9 if missed else 1,
            ))

    # -- presence, mail, recordings ------------------------------------------------------------

    def _change_presence(self, person: Person, status: str, note: str) -> None:
        person.presence, person.presence_note = status, note

        def broadcast() -> None:
            for session in list(self._sessions.values()):
                if session.user is None or session.kind != "User":
                    continue
                from_jid = 0 if session.user is person else person.jid
                session.send_event(msg.presence(from_jid, status, note))

        self._after_gap(broadcast)

    def _store_mail(self, user: SimUser, item: MailItem) -> None:
        item.mail_id = self.fixture.next_mail_id()
        item.to = item.to or user.ext
        item.document_name = item.document_name or f"u{user.jid:017d}/m{item.mail_id:04d}.{item.file_format}"
        self.fixture.mailboxes.setdefault(user.login, []).append(item)
        self._emit([user.ext], lambda ref: msg.mail_incoming_ready(ref, item, user.jid))

    def _new_recording(self, user: SimUser, call: Call) -> None:
        other = call.other(call.party(user.ext) or call.calling)
        self._store_mail(user, MailItem(
            media_type="Recording", from_number=other.device, from_name=other.name, caller_name=other.name,
            received=int(time.time()), duration=2, gcid=call.gcid, audio=tone_wav(2.0, 330.0),
        ))

    # -- scripting API (the control HTTP API calls exactly these) -------------------------------

    def _user_by_ext(self, ext: str) -> SimUser:
        person = self.person_by_ext(ext)
        if not isinstance(person, SimUser):
            raise SimulatorError(f"no user with extension {ext!r}", 404)
        return person

    def _sessions_of(self, login: str) -> list[Session]:
        sessions = list(self._by_login.get(login, ()))
        if not sessions:
            raise SimulatorError(f"no live session for {login!r}", 404)
        return sessions

    async def incoming_call(self, to_ext: str, from_number: str, from_name: str = "") -> int:
        """An outside (or internal) party calls ``to_ext``; returns the call id."""
        if self.person_by_ext(to_ext) is None:
            raise SimulatorError(f"no extension {to_ext!r}", 404)
        if not from_number:
            raise SimulatorError("from_number is required")
        return self.model.incoming(to_ext, from_number, from_name).call_id

    async def answer(self, call_id: int, by: str | None = None) -> None:
        """The ringing party (default: the called one) answers."""
        try:
            self.model.answer(call_id, by)
        except CallError as exc:
            raise SimulatorError(str(exc), 404 if exc.value == msg.INVALID_CALL[1] else 409) from None

    async def hangup(self, call_id: int, by: str | None = None) -> None:
        """A party (ext or number; default: the far end) hangs up."""
        try:
            self.model.clear(call_id, by)
        except CallError as exc:
            raise SimulatorError(str(exc), 404 if exc.value == msg.INVALID_CALL[1] else 409) from None

    def calls(self) -> list[dict[str, object]]:
        return [c.as_dict() for c in self.model.calls.values()]

    async def leave_voicemail(self, ext: str, from_number: str, from_name: str = "", duration: int = 5,
                              media_type: str = "VoiceMail", audio: bytes | None = None) -> int:
        """Store a new mail for the user at ``ext`` and fire ``MailIncomingReadyEvent``; returns its id."""
        user = self._user_by_ext(ext)
        if media_type not in MEDIA_TYPES:
            raise SimulatorError(f"mediaType must be one of {', '.join(MEDIA_TYPES)}")
        if not 0 <= duration <= 65535:
            raise SimulatorError("duration must be between 0 and 65535 seconds")
        item = MailItem(media_type=media_type, from_number=from_number, from_name=from_name, caller_name=from_name,
                        received=int(time.time()), duration=duration,
                        gcid=f"{self.fixture.sn}-00-0000D-{self.fixture.next_mail_id():03X}",
                        audio=audio if audio is not None else tone_wav(max(1, min(duration, 5))),
                        file_format="wav" if media_type != "Fax" else "pdf")
        self._store_mail(user, item)
        return item.mail_id

    async def set_presence(self, ext: str, status: str, note: str = "") -> None:
        person = self.person_by_ext(ext)
        if person is None:
            raise SimulatorError(f"no extension {ext!r}", 404)
        if not status:
            raise SimulatorError("status is required")
        self._change_presence(person, status, note)

    # -- address book (spec §4.2, §5.9) ---------------------------------------------------------

    def _check_fields(self, fields: dict[str, str]) -> None:
        unknown = set(fields) - set(DIRECTORY_FIELDS)
        if unknown:
            raise SimulatorError(f"unknown address-book field(s): {', '.join(sorted(unknown))}")
        for name, value in fields.items():
            if not isinstance(value, str):
                raise SimulatorError(f"{name} must be a string")

    def _directory_changed(self, kind: str, person: Person) -> None:
        """Re-index the people, then send the ``Ab*UserEvent`` (built now, as the entry is now)
        to every session that ran ``MonitorStartAb``."""
        self._index_key = ()
        xml = msg.ab_user_event(kind, person)

        def broadcast() -> None:
            for session in list(self._sessions.values()):
                if session.ab_notify and session.user is not None:
                    session.send_event(xml)

        self._after_gap(broadcast)

    async def add_directory_entry(self, ext: str, jid: int | None = None, **fields: str) -> Person:
        """A new address-book entry (who cannot log in); ``AbAddUserEvent`` to the watchers."""
        self._check_fields(fields)
        if not ext:
            raise SimulatorError("ext is required")
        if self.person_by_ext(ext) is not None:
            raise SimulatorError(f"extension {ext!r} is already in the address book", 409)
        people = self.fixture.people()
        if jid is None:
            jid = 1 + max((p.jid for p in people), default=40_000_000_000_000_000)
        elif jid <= 0:
            raise SimulatorError("jid must be a positive number")
        elif any(p.jid == jid for p in people):
            raise SimulatorError(f"jid {jid} is already in the address book", 409)
        entry = DirectoryEntry(jid=jid, ext=ext, **fields)
        self.fixture.directory.append(entry)
        self._directory_changed("add", entry)
        return entry

    async def update_directory_entry(self, ext: str, new_ext: str | None = None, **fields: str) -> Person:
        """Change the entry (a user or a directory-only person) at ``ext``; ``AbUpdateUserEvent``."""
        self._check_fields(fields)
        person = self.person_by_ext(ext)
        if person is None:
            raise SimulatorError(f"no extension {ext!r}", 404)
        if new_ext is not None and new_ext != ext:
            if not new_ext:
                raise SimulatorError("ext must not be empty")
            if self.person_by_ext(new_ext) is not None:
                raise SimulatorError(f"extension {new_ext!r} is already in the address book", 409)
            person.ext = new_ext
        for name, value in fields.items():
            setattr(person, name, value)
        self._directory_changed("update", person)
        return person

    async def delete_directory_entry(self, ext: str) -> None:
        """Remove the entry at ``ext`` from the address book (a user can then no longer log in;
        their open sessions stay); ``AbDeleteUserEvent`` with its JID."""
        person = self.person_by_ext(ext)
        if person is None:
            raise SimulatorError(f"no extension {ext!r}", 404)
        for people in (self.fixture.users, self.fixture.directory):
            for i, p in enumerate(people):
                if p is person:
                    del people[i]
                    break
        self._directory_changed("delete", person)

    async def drop_session(self, login: str) -> int:
        """Reset the TCP connection of every session of ``login`` (no Logout, no TLS close)."""
        sessions = self._sessions_of(login)
        for session in sessions:
            session.close(abort=True)
        return len(sessions)

    async def force_logout(self, login: str, mode: str = "forced") -> int:
        """Send ``<Logout mode=…/>`` to every session of ``login``, then close them."""
        sessions = self._sessions_of(login)
        self._logout(sessions, mode)
        return len(sessions)

    def _logout(self, sessions: Iterable[Session], mode: str) -> None:
        loop = asyncio.get_running_loop()
        for session in sessions:
            session.send_event(msg.logout(mode))
            self._forget_monitors(session)  # a kicked session gets no more events
            loop.call_later(self.quirks.logout_close_delay, session.close)

    def _force_out_others(self, login: str, keep: Session) -> None:
        others = [s for s in self._by_login.get(login, ()) if s is not keep]
        self._logout(others, "forced")

    async def send_garbage(self, login: str, kind: str = "xml") -> int:
        """Send a malformed frame: ``xml`` (good header, broken XML), ``header`` (non-digit invoke
        id) or ``length`` (length field shorter than the header)."""
        if kind not in GARBAGE_KINDS:
            raise SimulatorError(f"kind must be one of {', '.join(GARBAGE_KINDS)}")
        data = {
            "xml": encode_frame(EVENT_ID, b"<DeliveredEvent><unclosed"),
            "header": b"\x00\x00\x00\x0fAB12<x></x>",
            "length": b"\x00\x00\x00\x04",
        }[kind]
        sessions = self._sessions_of(login)
        for session in sessions:
            session.send_raw(data)
        return len(sessions)

    def set_delay(self, seconds: float | None, command: str | None = None) -> None:
        """Delay replies to ``command`` (a root name such as ``MakeCall``; None = every command).
        ``seconds`` 0/None clears it."""
        if seconds is not None and seconds < 0:
            raise SimulatorError("seconds must not be negative")
        if not seconds:
            self._delays.pop(command, None)
        else:
            self._delays[command] = float(seconds)

    def clear_delays(self) -> None:
        self._delays.clear()

    def set_drop(self, command: str | None, drop: bool = True) -> None:
        """Silently ignore ``command`` (None = every command but nothing is answered)."""
        if drop:
            self._drops.add(command)
        else:
            self._drops.discard(command)

    def delays(self) -> dict[str, float]:
        return {("*" if k is None else k): v for k, v in self._delays.items()}

    def sessions(self) -> list[SessionInfo]:
        """Every session since start (closed ones too, newest 10 000), ordered by id."""
        live = [s.info() for s in self._sessions.values()]
        return sorted([*self._closed, *live], key=lambda i: i.id)
