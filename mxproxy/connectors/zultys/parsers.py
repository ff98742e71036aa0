"""Server XML → the backend-neutral dataclasses and events of ``connectors.base`` (spec §2–§5).

Readers are lenient the way the Go clients are (unknown elements ignored, missing ones empty or
zero, namespaces already stripped by ``xml.parse``), but content that cannot be what it claims,
such as a voicemail chunk that is not base64, is a ``MXProtocolError``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from dataclasses import dataclass
from typing import Callable
from xml.etree.ElementTree import Element

from mxproxy.connectors import base
from mxproxy.connectors.errors import MXProtocolError
from mxproxy.connectors.zultys.xml import attr_int, bool_of, int_of, parse_bool, text_of

# -- login -------------------------------------------------------------------------------------


def login_code(el: Element) -> int:
    """``Code`` (what the server sends) or ``code`` (what one client reads): spec §10 C1."""
    for name in ("Code", "code"):
        if name in el.attrib:
            return attr_int(el, name, -1)
    return -1


def api_version(el: Element) -> int:
    for name in ("apiversion", "apiVersion"):
        if name in el.attrib:
            return attr_int(el, name, 0)
    return 0


def login_info(el: Element) -> base.LoginInfo:
    return base.LoginInfo(
        server_id=el.get("sn", ""),
        extension=el.get("ext", ""),
        user_id=attr_int(el, "userId", 0),
        softphone_password=el.get("softPhonePwd", ""),
        api_version=api_version(el),
        attributes=dict(el.attrib),
    )


#: ECMA-323 error categories: the child of ``CSTAErrorCode`` whose text is the error (spec §3.2).
ERROR_CATEGORIES = frozenset({
    "operation", "security", "stateIncompatibility", "systemResourceAvailability", "subscribedResourceAvailability",
    "performanceManagement", "privateData", "unspecified",
})


def csta_error_text(el: Element) -> str:
    """The text of the ECMA-323 category child, else the root's own text (an MX that puts the
    error there), else the text of the last child element (what the Go clients report)."""
    children = list(el)
    for child in reversed(children):
        if child.tag in ERROR_CATEGORIES:
            return (child.text or "").strip() or child.tag
    root_text = (el.text or "").strip()
    if root_text or not children:
        return root_text or "CSTA error"
    last = children[-1]
    return (last.text or "").strip() or last.tag


# -- lists -------------------------------------------------------------------------------------


def _device(el: Element, tag: str) -> str:
    """``<tag><deviceIdentifier>x</deviceIdentifier></tag>``, or the text of ``<tag>`` itself."""
    node = el.find(tag)
    if node is None:
        return ""
    inner = node.find("deviceIdentifier")
    if inner is not None:
        return inner.text or ""
    return (node.text or "").strip()


def contact(el: Element) -> base.Contact:
    fields = {child.tag: child.text or "" for child in el}  # one pass instead of ten finds
    get = fields.get
    home_system = get("homeSystem", "").strip()
    return base.Contact(
        jid=attr_int(el, "jid", 0),
        first_name=get("firstName", ""),
        last_name=get("lastName", ""),
        ext=get("businessPhone", ""),
        home_phone=get("homePhone", ""),
        cell_phone=get("cellPhone", ""),
        email=get("email", ""),
        home_system=int(home_system) if home_system.isdigit() else 0,
        did=get("did", ""),
        exchange_id=get("exchangeId", ""),
        presence=el.get("presence", ""),
        presence_note=el.get("presenceNote", ""),
    )


@dataclass(frozen=True, slots=True)
class AddressBookPage:
    size: int
    index: int
    contacts: list[base.Contact]


def address_book_page(el: Element) -> AddressBookPage:
    return AddressBookPage(attr_int(el, "size", 0), attr_int(el, "index", 0), [contact(e) for e in el.iter("abentry")])


def call_log_entry(el: Element) -> base.CallLogEntry:
    return base.CallLogEntry(
        record_id=int_of(el, "record_id"),
        missed=parse_bool(el.get("missed")),
        direction=el.get("direction", ""),
        gcid=text_of(el, "gcid"),
        connect_timestamp=int_of(el, "connectTimestamp"),
        disconnect_timestamp=int_of(el, "disconnectTimestamp"),
        calling_party_no=text_of(el, "callingPartyNo"),
        original_called_party_no=text_of(el, "originalCalledPartyNo"),
        first_name=text_of(el, "firstName"),
        last_name=text_of(el, "lastName"),
        extension=text_of(el, "extension"),
        service_name=text_of(el, "serviceName"),
        service_extension=text_of(el, "serviceExtension"),
        call_type=int_of(el, "callType"),
        leg_type=int_of(el, "legType"),
        self_leg_type=int_of(el, "selfLegType"),
        monitor_type=int_of(el, "monitorType"),
    )


def call_log_chunk(el: Element) -> list[base.CallLogEntry]:
    return [call_log_entry(e) for e in el.iter("callinfo")]


def services(el: Element) -> list[base.Service]:
    return [
        base.Service(id=int_of(s, "serviceId"), name=text_of(s, "serviceName"), type=text_of(s, "serviceType"),
                     ext=text_of(s, "extension"), home_system=int_of(s, "homeSystem"))
        for s in el.iter("Service")
    ]


def monitor_id(el: Element) -> int:
    return int_of(el, "monitorCrossRefID")


def make_call_result(el: Element, calling: str, called: str) -> base.MakeCallResult:
    return base.MakeCallResult(
        call_id=int_of(el, "callingDevice/callID"),
        device_id=text_of(el, "callingDevice/deviceID") or calling,
        called_device=(text_of(el, "calledDevice").strip() or _device(el, "calledDevice")) or called,
    )


def assigned_device(el: Element) -> str:
    return text_of(el, "deviceID")


# -- mailbox -----------------------------------------------------------------------------------


def voicemails(el: Element, media_type: str = "VoiceMail") -> list[base.Voicemail]:
    """Mail items; one without a ``mediaType`` child is of the type that was asked for."""
    return [
        base.Voicemail(
            mail_id=text_of(m, "mailId").strip(),
            media_type=text_of(m, "mediaType").strip() or media_type,
            sender=m.get("from", ""),
            from_name=m.get("fromName", ""),
            caller_name=m.get("callerName", ""),
            to=m.get("to", ""),
            owner_type=m.get("ownerType", ""),
            owner_id=attr_int(m, "ownerId", 0),
            received=int_of(m, "received"),
            duration=int_of(m, "duration"),
            read=bool_of(m, "read"),
            note=text_of(m, "note"),
        )
        for m in el.iter("mail")
    ]


@dataclass(frozen=True, slots=True)
class MailChunk:
    number: int
    total: int
    file_format: str
    document_name: str
    data: bytes


def mail_chunk(el: Element) -> MailChunk:
    if "chunkNumber" not in el.attrib or "totalChunks" not in el.attrib:
        raise MXProtocolError(f"voicemail chunk reply {el.tag!r} lacks chunkNumber/totalChunks")
    raw = "".join(text_of(el, "mediaContent").split())
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise MXProtocolError("voicemail chunk is not valid base64") from None
    return MailChunk(
        number=attr_int(el, "chunkNumber", 0),
        total=attr_int(el, "totalChunks", 0),
        file_format=text_of(el, "fileFormat"),
        document_name=text_of(el, "documentName"),
        data=data,
    )


# -- conferences -------------------------------------------------------------------------------

_CONF_TEXT = {"confId": "conf_id", "name": "name", "description": "description", "type": "type", "ws": "ws",
              "wsType": "ws_type"}
_CONF_INT = {"ownerId": "owner_id", "accessId": "access_id", "startDate": "start_date", "duration": "duration"}
_CONF_BOOL = {"waitForOwner": "wait_for_owner", "delOnOwnerLeave": "del_on_owner_leave"}


def conference_overlay(base_conf: base.Conference, el: Element) -> base.Conference:
    """``base_conf`` with every field present among ``el``'s direct children replaced (how MX Proxy
    decodes ConfAddEvent/ConfUpdEvent over the request)."""
    changes: dict[str, object] = {}
    for child in el:
        tag = child.tag
        if tag in _CONF_TEXT:
            changes[_CONF_TEXT[tag]] = (child.text or "").strip() if tag == "confId" else child.text or ""
        elif tag in _CONF_INT:
            changes[_CONF_INT[tag]] = int_of(child)
        elif tag in _CONF_BOOL:
            changes[_CONF_BOOL[tag]] = bool_of(child)
    return dataclasses.replace(base_conf, **changes) if changes else base_conf


def conferences(el: Element) -> list[base.Conference]:
    return [conference_overlay(base.Conference(), c) for c in el.iter("conf")]


def conference_id(el: Element) -> str:
    return text_of(el, "confId").strip()


def conference_server_info(el: Element) -> base.ConferenceServerInfo:
    return base.ConferenceServerInfo(
        extension=text_of(el, "extension"), did=text_of(el, "DID") or text_of(el, "did"),
        invite_subject=text_of(el, "inviteSubject"), invite_body=text_of(el, "inviteBody"),
        invite_meeting=text_of(el, "inviteMXmeeting"),
    )


# -- events ------------------------------------------------------------------------------------


def _call_common(el: Element, connection: str) -> dict[str, object]:
    conn = el.find(connection)
    return {
        "monitor_id": int_of(el, "monitorCrossRefID"),
        "call_id": int_of(conn, "callID"),
        "device_id": text_of(conn, "deviceID"),
        "global_call_id": text_of(conn, "globalCallID").strip(),
        "cause": text_of(el, "cause"),
        "local_connection_info": text_of(el, "localConnectionInfo"),
        "call_type_flags": int_of(el, "callTypeFlags"),
        "cmds_allowed": int_of(el, "cmdsAllowed"),
    }


def _cads(el: Element) -> tuple[base.Cad, ...]:
    return tuple(base.Cad(c.get("name", ""), c.get("type", ""), c.text or "") for c in el.findall("cad"))


def delivered(el: Element) -> base.Delivered:
    return base.Delivered(
        **_call_common(el, "connection"),  # type: ignore[arg-type]
        calling_device=_device(el, "callingDevice"), calling_display_name=text_of(el, "callingDisplayName"),
        called_device=_device(el, "calledDevice"), alerting_device=_device(el, "alertingDevice"),
        alerting_display_name=text_of(el, "alertingDisplayName"),
        last_redirection_device=_device(el, "lastRedirectionDevice"),
        network_calling_device=_device(el, "networkCallingDevice"), cads=_cads(el),
    )


def established(el: Element) -> base.Established:
    return base.Established(
        **_call_common(el, "establishedConnection"),  # type: ignore[arg-type]
        answering_device=_device(el, "answeringDevice"), answering_display_name=text_of(el, "answeringDisplayName"),
        calling_device=_device(el, "callingDevice"), calling_display_name=text_of(el, "callingDisplayName"),
        called_device=_device(el, "calledDevice"), last_redirection_device=_device(el, "lastRedirectionDevice"),
        cads=_cads(el),
    )


def originated(el: Element) -> base.Originated:
    return base.Originated(**_call_common(el, "originatedConnection"),  # type: ignore[arg-type]
                           calling_device=_device(el, "callingDevice"), called_device=_device(el, "calledDevice"))


def connection_cleared(el: Element) -> base.ConnectionCleared:
    return base.ConnectionCleared(**_call_common(el, "droppedConnection"),  # type: ignore[arg-type]
                                  releasing_device=_device(el, "releasingDevice"))


def held(el: Element) -> base.Held:
    return base.Held(**_call_common(el, "heldConnection"),  # type: ignore[arg-type]
                     holding_device=_device(el, "holdingDevice"))


def retrieved(el: Element) -> base.Retrieved:
    return base.Retrieved(**_call_common(el, "retrievedConnection"),  # type: ignore[arg-type]
                          retrieving_device=_device(el, "retrievingDevice"))


def diverted(el: Element) -> base.Diverted:
    return base.Diverted(**_call_common(el, "connection"),  # type: ignore[arg-type]
                         diverting_device=_device(el, "divertingDevice"), new_destination=_device(el, "newDestination"),
                         last_redirection_device=_device(el, "lastRedirectionDevice"))


def failed(el: Element) -> base.Failed:
    return base.Failed(**_call_common(el, "failedConnection"),  # type: ignore[arg-type]
                       calling_device=_device(el, "callingDevice"), called_device=_device(el, "calledDevice"))


def transferred(el: Element) -> base.Transferred:
    return base.Transferred(**_call_common(el, "primaryOldCall"),  # type: ignore[arg-type]
                            transferring_device=_device(el, "transferringDevice"),
                            transferred_to_device=_device(el, "transferredToDevice"))


def mail_incoming_ready(el: Element) -> base.MailIncomingReady:
    return base.MailIncomingReady(
        monitor_id=int_of(el, "monitorCrossRefID"),
        mail_id=text_of(el, "mailId").strip(),
        media_type=text_of(el, "mediaType") or "VoiceMail",
        sender=el.get("from", ""), from_name=el.get("fromName", ""), caller_name=el.get("callerName", ""),
        to=el.get("to", ""), owner_id=attr_int(el, "ownerId", 0), owner_type=el.get("ownerType", ""),
        private=parse_bool(el.get("private")), urgent=parse_bool(el.get("urgent")),
        gcid=text_of(el, "gcid"), received=int_of(el, "received"), duration=int_of(el, "duration"),
        read=bool_of(el, "read"), note=text_of(el, "note"), file_format=text_of(el, "fileFormat"),
    )


def recording_state(el: Element) -> base.RecordingState:
    """Spec §10 C4: the call reference is read at the root, else under ``connection``."""
    call_id = int_of(el, "callID") or int_of(el, "connection/callID")
    device = text_of(el, "deviceID") or text_of(el, "connection/deviceID")
    return base.RecordingState(monitor_id=int_of(el, "monitorCrossRefID"), call_id=call_id, device_id=device,
                               available=bool_of(el, "RecIsAvailable"), active=bool_of(el, "RecIsActive"))


def presence(el: Element) -> base.PresenceChanged:
    return base.PresenceChanged(user_id=attr_int(el, "from", 0), status=el.get("status", ""),
                                mx_status=el.get("mxStatus", ""), note=text_of(el, "presenceNote"))


def _address_book_entry(kind: str) -> Callable[[Element], base.AddressBookChanged]:
    """``AbAddUserEvent`` / ``AbUpdateUserEvent``: one ``abentry`` child, shaped as in ``ablist``."""

    def parse(el: Element) -> base.AddressBookChanged:
        entry = el.find("abentry")
        if entry is None:
            return base.AddressBookChanged(kind=kind)
        found = contact(entry)
        return base.AddressBookChanged(kind=kind, user_id=found.jid, contact=found)

    return parse


def address_book_deleted(el: Element) -> base.AddressBookChanged:
    """``AbDeleteUserEvent``: a ``userId`` child (the JID of the entry that is gone)."""
    return base.AddressBookChanged(kind=base.AddressBookChanged.DELETE, user_id=int_of(el, "userId"))


#: Root name → event parser. ``TransferedEvent`` is the server's spelling (spec §5.8).
EVENT_PARSERS: dict[str, Callable[[Element], base.Event]] = {
    "DeliveredEvent": delivered,
    "EstablishedEvent": established,
    "OriginatedEvent": originated,
    "ConnectionClearedEvent": connection_cleared,
    "HeldEvent": held,
    "RetrievedEvent": retrieved,
    "DivertedEvent": diverted,
    "FailedEvent": failed,
    "TransferedEvent": transferred,
    "TransferredEvent": transferred,
    "MailIncomingReadyEvent": mail_incoming_ready,
    "RecordingStateEvent": recording_state,
    "presence": presence,
    "AbAddUserEvent": _address_book_entry(base.AddressBookChanged.ADD),
    "AbUpdateUserEvent": _address_book_entry(base.AddressBookChanged.UPDATE),
    "AbDeleteUserEvent": address_book_deleted,
}


def event(el: Element) -> base.Event | None:
    """The typed event for a 9999 message, or None for messages that are not events we model."""
    parser = EVENT_PARSERS.get(el.tag)
    return parser(el) if parser is not None else None


def event_call_id(el: Element) -> int:
    """The call id of a call event's connection, wherever that event type keeps it."""
    for conn in ("connection", "droppedConnection", "heldConnection", "retrievedConnection", "establishedConnection",
                 "originatedConnection", "failedConnection", "primaryOldCall"):
        node = el.find(conn)
        if node is not None:
            return int_of(node, "callID")
    return int_of(el, "callID")
