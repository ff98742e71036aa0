"""The backend-neutral connector contract: operations, results and typed events.

No XML and no sockets here. The API, the session manager and the push dispatcher only ever see
these types, so a backend other than Zultys CSTA can be added by implementing ``Connector`` and
``MXSession`` and registering under the ``mxproxy.connectors`` entry-point group.
"""

from __future__ import annotations

import abc
import enum
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, ClassVar, Mapping

from mxproxy.connectors.errors import MXUnsupported

# --------------------------------------------------------------------------------------------
# Capabilities
# --------------------------------------------------------------------------------------------


class Capability(str, enum.Enum):
    DIRECTORY = "directory"
    SERVICES = "services"
    CALL_LOG = "call_log"
    CALL_MODE = "call_mode"
    ASSIGN_DEVICE = "assign_device"
    MAKE_CALL = "make_call"
    ANSWER_CALL = "answer_call"
    TRANSFER_CALL = "transfer_call"
    CLEAR_CONNECTION = "clear_connection"
    HOLD = "hold"
    RETRIEVE = "retrieve"
    RECORDING = "recording"
    VOICEMAIL = "voicemail"
    CONFERENCES = "conferences"
    MONITOR = "monitor"
    PRESENCE = "presence"


ALL_CAPABILITIES: frozenset[Capability] = frozenset(Capability)


# --------------------------------------------------------------------------------------------
# Account and login
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MXAccount:
    """Where and as whom to log in; ``password`` is the clear MX password."""

    host: str
    port: int
    login: str
    password: str = field(repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class LoginInfo:
    server_id: str  # loginResponce@sn -> JSON "mx"
    extension: str  # loginResponce@ext
    user_id: int  # loginResponce@userId (JID)
    softphone_password: str = field(repr=False, default="")
    api_version: int = 0
    attributes: Mapping[str, str] = field(default_factory=dict, repr=False)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    jid: int
    first_name: str = ""
    last_name: str = ""
    ext: str = ""
    home_phone: str = ""
    cell_phone: str = ""
    email: str = ""
    home_system: int = 0
    did: str = ""
    exchange_id: str = ""
    presence: str = ""
    presence_note: str = ""


@dataclass(frozen=True)
class Service:
    id: int
    name: str
    type: str
    ext: str
    home_system: int = 0


@dataclass(frozen=True)
class CallLogEntry:
    record_id: int
    missed: bool = False
    direction: str = ""
    gcid: str = ""
    connect_timestamp: int = 0
    disconnect_timestamp: int = 0
    calling_party_no: str = ""
    original_called_party_no: str = ""
    first_name: str = ""
    last_name: str = ""
    extension: str = ""
    service_name: str = ""
    service_extension: str = ""
    call_type: int = 0
    leg_type: int = 0
    self_leg_type: int = 0
    monitor_type: int = 0


@dataclass(frozen=True)
class CallMode:
    remote: bool
    device: str = ""
    ring_delay: int = 1
    vm_delay: int = 30


@dataclass(frozen=True)
class MakeCallResult:
    call_id: int
    device_id: str
    called_device: str


@dataclass(frozen=True)
class Voicemail:
    mail_id: str
    media_type: str = "VoiceMail"
    sender: str = ""  # "from"
    from_name: str = ""
    caller_name: str = ""
    to: str = ""
    owner_type: str = ""
    owner_id: int = 0
    received: int = 0
    duration: int = 0
    read: bool = False
    note: str = ""


class VoicemailDownload(abc.ABC):
    """A started download: metadata is known, bytes arrive chunk by chunk.

    Iterate it for the raw bytes of each chunk. ``aclose`` before the end cancels the transfer on
    the MX (``MailCancelReceive`` for Zultys); after the end it is a no-op.
    """

    file_format: str
    document_name: str
    total_chunks: int

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[bytes]: ...

    @abc.abstractmethod
    async def aclose(self) -> None: ...

    async def __aenter__(self) -> "VoicemailDownload":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@dataclass(frozen=True)
class Conference:
    conf_id: str = ""
    owner_id: int = 0
    name: str = ""
    access_id: int = 0
    description: str = ""
    type: str = ""
    start_date: int = 0
    duration: int = 0
    wait_for_owner: bool = False
    del_on_owner_leave: bool = False
    ws: str = ""
    ws_type: str = ""


@dataclass(frozen=True)
class ConferenceServerInfo:
    extension: str = ""
    did: str = ""
    invite_subject: str = ""
    invite_body: str = ""
    invite_meeting: str = ""


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something the MX told us without being asked. ``received_at`` is our clock (Unix s)."""

    received_at: float = field(default_factory=time.time, compare=False, kw_only=True)
    monitor_id: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class Cad:
    name: str
    type: str
    value: str


@dataclass(frozen=True)
class CallEvent(Event):
    call_id: int = 0
    device_id: str = ""
    global_call_id: str = ""
    cause: str = ""
    local_connection_info: str = ""
    call_type_flags: int = 0
    cmds_allowed: int = 0


@dataclass(frozen=True)
class Delivered(CallEvent):
    calling_device: str = ""
    calling_display_name: str = ""
    called_device: str = ""
    alerting_device: str = ""
    alerting_display_name: str = ""
    last_redirection_device: str = ""
    network_calling_device: str = ""
    cads: tuple[Cad, ...] = ()


@dataclass(frozen=True)
class Established(CallEvent):
    answering_device: str = ""
    answering_display_name: str = ""
    calling_device: str = ""
    calling_display_name: str = ""
    called_device: str = ""
    last_redirection_device: str = ""
    cads: tuple[Cad, ...] = ()


@dataclass(frozen=True)
class Originated(CallEvent):
    calling_device: str = ""
    called_device: str = ""


@dataclass(frozen=True)
class ConnectionCleared(CallEvent):
    releasing_device: str = ""


@dataclass(frozen=True)
class Held(CallEvent):
    holding_device: str = ""


@dataclass(frozen=True)
class Retrieved(CallEvent):
    retrieving_device: str = ""


@dataclass(frozen=True)
class Diverted(CallEvent):
    diverting_device: str = ""
    new_destination: str = ""
    last_redirection_device: str = ""


@dataclass(frozen=True)
class Failed(CallEvent):
    calling_device: str = ""
    called_device: str = ""


@dataclass(frozen=True)
class Transferred(CallEvent):
    transferring_device: str = ""
    transferred_to_device: str = ""


@dataclass(frozen=True)
class MailIncomingReady(Event):
    mail_id: str = ""
    media_type: str = "VoiceMail"
    sender: str = ""  # "from"
    from_name: str = ""
    caller_name: str = ""
    to: str = ""
    owner_id: int = 0
    owner_type: str = ""
    private: bool = False
    urgent: bool = False
    gcid: str = ""
    received: int = 0
    duration: int = 0
    read: bool = False
    note: str = ""
    file_format: str = ""


@dataclass(frozen=True)
class RecordingState(Event):
    call_id: int = 0
    device_id: str = ""
    available: bool = False
    active: bool = False


@dataclass(frozen=True)
class PresenceChanged(Event):
    user_id: int = 0  # 0 = the logged-in user
    status: str = ""
    mx_status: str = ""
    note: str = ""


@dataclass(frozen=True)
class AddressBookChanged(Event):
    """An address-book entry was added, updated or deleted on the MX (spec §5.9, after
    ``MonitorStartAb``). It exists so cached directories can be dropped; it is never pushed.

    ``kind`` is ``add``, ``update`` or ``delete``; ``user_id`` is the entry's JID; ``contact`` is
    the entry as the MX sent it (add/update; None for a delete)."""

    ADD: ClassVar[str] = "add"
    UPDATE: ClassVar[str] = "update"
    DELETE: ClassVar[str] = "delete"

    kind: str = ""
    user_id: int = 0
    contact: Contact | None = None


@dataclass(frozen=True)
class SessionEnded(Event):
    """Always the last event of a session's stream. ``mode`` is the server's Logout mode
    (``forced``…), ``closed`` when the socket went away, ``logout`` after our own logout,
    ``error`` after a protocol error."""

    mode: str = "closed"
    reason: str = ""


# --------------------------------------------------------------------------------------------
# The contract
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceRequest:
    """Wire tracing asked for one MX login (admin ``POST /trace``): until when (``time.time()``),
    into which folder, and whether names and numbers are pseudonymised."""

    directory: Path
    until: float
    pseudonymise: bool = False

    @property
    def active(self) -> bool:
        return time.time() < self.until


class MXSession(abc.ABC):
    """One logged-in session with an MX for one user.

    Every method may raise the errors of ``mxproxy.connectors.errors``; an operation the backend
    lacks raises ``MXUnsupported`` (the default implementations below do exactly that).
    """

    login_info: LoginInfo
    capabilities: frozenset[Capability] = ALL_CAPABILITIES

    def start_trace(self, request: TraceRequest) -> bool:
        """Trace this live session's wire traffic as ``request`` says (replacing a running
        trace; an inactive request stops it). False when the backend cannot trace."""
        return False

    # lifecycle ---------------------------------------------------------------------------
    @abc.abstractmethod
    def events(self) -> AsyncIterator[Event]:
        """The session's events in arrival order; ends after a ``SessionEnded``.

        Single consumer. The connector buffers a bounded number; on overflow the oldest are
        dropped and logged, so a slow consumer never stalls the protocol reader."""

    @property
    @abc.abstractmethod
    def is_alive(self) -> bool: ...

    @abc.abstractmethod
    async def logout(self) -> None:
        """Say goodbye to the MX (best effort) and close. Idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close without a logout message (e.g. after the peer vanished). Idempotent."""

    # monitor -----------------------------------------------------------------------------
    async def start_monitor(self, device: str | None = None) -> int:
        """Start event monitoring of ``device`` (default: own extension); returns its id."""
        raise MXUnsupported(Capability.MONITOR.value)

    async def stop_monitor(self, monitor_id: int) -> None:
        raise MXUnsupported(Capability.MONITOR.value)

    # directory and lists -----------------------------------------------------------------
    async def directory(self) -> list[Contact]:
        raise MXUnsupported(Capability.DIRECTORY.value)

    async def services(self) -> list[Service]:
        raise MXUnsupported(Capability.SERVICES.value)

    async def call_log(self, since: int | None = None) -> list[CallLogEntry]:
        """Call history in ``record_id`` order; ``since`` = only calls after that Unix time."""
        raise MXUnsupported(Capability.CALL_LOG.value)

    # call control ------------------------------------------------------------------------
    async def set_call_mode(self, mode: CallMode) -> None:
        raise MXUnsupported(Capability.CALL_MODE.value)

    async def assign_device(self, name: str) -> str:
        """Assign a named device to the session; returns the name the MX reports back."""
        raise MXUnsupported(Capability.ASSIGN_DEVICE.value)

    async def make_call(self, calling: str, called: str) -> MakeCallResult:
        raise MXUnsupported(Capability.MAKE_CALL.value)

    async def answer_call(self, call_id: int, device: str) -> None:
        raise MXUnsupported(Capability.ANSWER_CALL.value)

    async def transfer_call(self, call_id: int, device: str, to: str) -> None:
        raise MXUnsupported(Capability.TRANSFER_CALL.value)

    async def clear_connection(self, call_id: int, device: str) -> ConnectionCleared:
        """Hang up; returns the matching ConnectionCleared event (matched by call id)."""
        raise MXUnsupported(Capability.CLEAR_CONNECTION.value)

    async def hold_call(self, call_id: int, device: str) -> Held:
        raise MXUnsupported(Capability.HOLD.value)

    async def retrieve_call(self, call_id: int, device: str) -> Retrieved:
        raise MXUnsupported(Capability.RETRIEVE.value)

    async def start_recording(self, call_id: int, device: str, group: str = "") -> None:
        raise MXUnsupported(Capability.RECORDING.value)

    async def stop_recording(self, call_id: int, device: str, group: str = "") -> None:
        raise MXUnsupported(Capability.RECORDING.value)

    # voicemail ---------------------------------------------------------------------------
    async def voicemails(self, media_type: str | None = None) -> list[Voicemail]:
        raise MXUnsupported(Capability.VOICEMAIL.value)

    async def download_voicemail(self, mail_id: str, media_type: str | None = None) -> VoicemailDownload:
        """Start a download: the first chunk is fetched before this returns, so errors surface
        here (and can become a 404) rather than mid-stream."""
        raise MXUnsupported(Capability.VOICEMAIL.value)

    async def delete_voicemail(self, mail_id: str, media_type: str | None = None) -> None:
        raise MXUnsupported(Capability.VOICEMAIL.value)

    async def set_voicemail_read(self, mail_id: str, read: bool, media_type: str | None = None) -> None:
        raise MXUnsupported(Capability.VOICEMAIL.value)

    async def set_voicemail_note(self, mail_id: str, note: str, media_type: str | None = None) -> None:
        raise MXUnsupported(Capability.VOICEMAIL.value)

    # conferences -------------------------------------------------------------------------
    async def conferences(self) -> list[Conference]:
        raise MXUnsupported(Capability.CONFERENCES.value)

    async def conference_server_info(self) -> ConferenceServerInfo:
        raise MXUnsupported(Capability.CONFERENCES.value)

    async def create_conference(self, conference: Conference) -> Conference:
        """Returns the request overlaid with what the MX reported in its ConfAddEvent."""
        raise MXUnsupported(Capability.CONFERENCES.value)

    async def update_conference(self, conference: Conference) -> Conference:
        raise MXUnsupported(Capability.CONFERENCES.value)

    async def delete_conference(self, conf_id: str) -> None:
        raise MXUnsupported(Capability.CONFERENCES.value)

    async def join_conference(self, call_id: str, access_id: int) -> None:
        raise MXUnsupported(Capability.CONFERENCES.value)

    async def conference_from_call(self, call_id: int, owner_call_id: int) -> None:
        raise MXUnsupported(Capability.CONFERENCES.value)

    # presence ----------------------------------------------------------------------------
    async def set_presence(self, status: str, note: str | None = None) -> None:
        raise MXUnsupported(Capability.PRESENCE.value)


@dataclass(frozen=True)
class Option:
    """One connector-specific ``[mx]`` key: its kind (``string``, ``boolean``, ``integer``,
    ``duration``, ``strings`` or ``path``) and its default. The config parser reads declared keys
    with the same checks as its own and refuses undeclared ones, so a typo cannot pass silently."""

    kind: str
    default: Any = None


class Connector(abc.ABC):
    """A kind of MX backend. One instance per process; it opens sessions."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]] = ALL_CAPABILITIES
    #: the connector's own ``[mx]`` keys; their typed values arrive in ``MXConfig.options``
    options: ClassVar[Mapping[str, Option]] = {}

    @classmethod
    def option(cls, config: Any, name: str) -> Any:
        """A declared option's value from ``MXConfig.options`` (its default when not given)."""
        return config.options.get(name, cls.options[name].default)

    @abc.abstractmethod
    async def login(self, account: MXAccount) -> MXSession:
        """Connect and log in. Raises MXConnectionFailed/MXTLSError/MXLoginFailed/MXTimeout."""

    def trace_user(self, login: str, seconds: float, pseudonymise: bool = False) -> "TraceRequest":
        """Record the wire traffic of ``login``'s sessions for ``seconds`` (0 stops), where the
        connector keeps traces; returns what the live session gets via ``MXSession.start_trace``."""
        raise MXUnsupported("wire traces")

    async def aclose(self) -> None:
        """Release shared resources (connection pools, threads). Sessions are closed by owners."""
