"""Server-side XML: every response and event the simulator sends (shapes from spec §2–§5).

Values are escaped by ``mxproxy.connectors.zultys.xml.element``; nothing here concatenates
untrusted text into markup. Events take the ``monitorCrossRefID`` of the monitor they go out on.
"""

from __future__ import annotations

import base64
from typing import Iterable, Sequence

from mxproxy.connectors.zultys.xml import element, optional
from mxproxy.simulator.fixture import CallLogEntry, Conference, ConfServerInfo, MailItem, Person, Service, SimUser

ECMA_323_NS = "http://www.ecma-international.org/standards/ecma-323/csta/ed4"

# ECMA-323 style error categories and values used by the simulator (spec §3.2)
INVALID_CALL = ("operation", "invalidCallIdentifier")
INVALID_DEVICE = ("operation", "invalidDeviceIdentifier")
INVALID_CONNECTION_STATE = ("stateIncompatibility", "invalidConnectionState")
PRIVILEGE_VIOLATION = ("security", "privilegeViolationOnSpecifiedDevice")
INVALID_CROSS_REF = ("operation", "invalidMonitorCrossRefID")
UNKNOWN_MAIL = ("operation", "invalidMessageIdentifier")
NO_DOWNLOAD = ("stateIncompatibility", "noDownloadInProgress")
UNKNOWN_CONFERENCE = ("operation", "objectNotKnown")
INVALID_VALUE = ("operation", "valueOutOfRange")
NO_MONITOR = ("stateIncompatibility", "monitorRequired")
NOT_LOGGED_IN = ("security", "notLoggedIn")
UNSUPPORTED = ("operation", "invalidFeature")

CALL_TYPE_FLAGS = 3145736
CMDS_ALLOWED = 272


def csta_error(category: str, value: str, namespace: bool = False, in_root: bool = False) -> str:
    """ECMA-323 style (the value in a category child), or with the value as the root's text."""
    attrs = {"xmlns": ECMA_323_NS} if namespace else None
    if in_root:
        return element("CSTAErrorCode", attrs=attrs, text=value)
    return element("CSTAErrorCode", element(category, text=value), attrs=attrs)


# -- session ---------------------------------------------------------------------------------


def login_ok(user: SimUser, sn: str, api_version: int, server: bool, root: str = "loginResponce") -> str:
    attrs = {
        "Code": 0, "sn": sn, "apiversion": api_version,
        "ext": "" if server else user.ext, "userId": 0 if server else user.jid,
        "softPhonePwd": "" if server else user.soft_phone_pwd,
        "proto": "TLS", "mxport": 5061, "clientport": 1234, "mxCapab": "Audio|Video|Im|Voicemail|Fax|CallRec",
        "maxMsgFileSizeMb": 10,
    }
    return element(root, attrs=attrs, text="Login OK")


def login_failed(code: int, text: str, sn: str, api_version: int) -> str:
    return element("loginFailed", attrs={"Code": code, "sn": sn, "apiversion": api_version}, text=text)


def logout(mode: str) -> str:
    return element("Logout", attrs={"mode": mode})


def presence(from_jid: int, status: str, note: str = "", mx_status: str = "") -> str:
    return element("presence", optional("presenceNote", note), attrs={"from": from_jid, "status": status, "mxStatus": mx_status})


def empty(root: str) -> str:
    return element(root)


def mode_result() -> str:
    """What an MX might answer to ``iq set mode`` (spec §3.1: unknown; no client waits for it)."""
    return element("iq", attrs={"type": "result", "id": "mode"})


# -- monitors --------------------------------------------------------------------------------


def monitor_start_response(cross_ref: int) -> str:
    return element(
        "MonitorStartResponse",
        element("monitorCrossRefID", text=cross_ref),
        element("actualMonitorMediaClass", element("voice", text=True)),
    )


# -- address book, call log, services ----------------------------------------------------------


def abentry(p: Person) -> str:
    children = [element("firstName", text=p.first_name), element("lastName", text=p.last_name),
                element("businessPhone", text=p.ext)]
    for tag, value in (("homePhone", p.home_phone), ("cellPhone", p.cell_phone), ("email", p.email)):
        children.append(optional(tag, value))
    if p.home_system:
        children.append(element("homeSystem", text=p.home_system))
    children.append(optional("did", p.did))
    children.append(optional("exchangeId", p.exchange_id))
    return element("abentry", *children, attrs={"jid": p.jid, "presence": p.presence, "presenceNote": p.presence_note})


def ablist(size: int, index: int, people: Iterable[Person]) -> str:
    return element("ablist", *(abentry(p) for p in people), attrs={"size": size, "index": index})


#: Address-book change kind → event root (spec §5.9).
AB_EVENTS = {"add": "AbAddUserEvent", "update": "AbUpdateUserEvent", "delete": "AbDeleteUserEvent"}


def ab_user_event(kind: str, p: Person) -> str:
    """``AbAddUserEvent``/``AbUpdateUserEvent`` carry the ``abentry``; ``AbDeleteUserEvent`` the JID."""
    if kind == "delete":
        return element(AB_EVENTS[kind], element("userId", text=p.jid))
    return element(AB_EVENTS[kind], abentry(p))


def callinfo(e: CallLogEntry) -> str:
    children = [element("record_id", text=e.record_id), element("gcid", text=e.gcid)]
    if e.connect_timestamp:
        children.append(element("connectTimestamp", text=e.connect_timestamp))
    if e.disconnect_timestamp:
        children.append(element("disconnectTimestamp", text=e.disconnect_timestamp))
    children += [element("callingPartyNo", text=e.calling_party_no),
                 element("originalCalledPartyNo", text=e.original_called_party_no)]
    for tag, value in (("firstName", e.first_name), ("lastName", e.last_name), ("extension", e.extension),
                       ("serviceName", e.service_name), ("serviceExtension", e.service_extension)):
        children.append(optional(tag, value))
    for tag, number in (("callType", e.call_type), ("legType", e.leg_type), ("selfLegType", e.self_leg_type),
                        ("monitorType", e.monitor_type)):
        children.append(element(tag, text=number))
    return element("callinfo", *children, attrs={"missed": e.missed, "direction": e.direction})


def callloginfo(entries: Sequence[CallLogEntry]) -> str:
    return element("callloginfo", *(callinfo(e) for e in entries))


def service_list(services: Iterable[Service]) -> str:
    return element("GetServiceListResponse", *(
        element("Service", element("serviceId", text=s.id), element("serviceName", text=s.name),
                element("serviceType", text=s.type), element("extension", text=s.ext),
                element("homeSystem", text=s.home_system))
        for s in services
    ))


# -- mail ------------------------------------------------------------------------------------


def mail_list(items: Sequence[MailItem], with_media_type: bool = True) -> str:
    return element("MailGetListIncomingResponse", *(
        element("mail",
                element("mailId", text=m.mail_id), optional("mediaType", m.media_type if with_media_type else None),
                element("received", text=m.received), element("duration", text=m.duration),
                element("read", text=m.read), element("note", text=m.note),
                attrs={"from": m.from_number, "fromName": m.from_name, "callerName": m.caller_name, "to": m.to,
                       "ownerType": m.owner_type})
        for m in items
    ), attrs={"rowCount": len(items)})


def mail_incoming_ready(cross_ref: int, m: MailItem, owner_jid: int) -> str:
    return element(
        "MailIncomingReadyEvent",
        element("monitorCrossRefID", text=cross_ref), element("mailId", text=m.mail_id),
        element("mediaType", text=m.media_type), element("gcid", text=m.gcid), element("received", text=m.received),
        element("duration", text=m.duration), element("read", text=m.read), element("note", text=m.note),
        element("fileFormat", text=m.file_format),
        attrs={"from": m.from_number, "fromName": m.from_name, "callerName": m.caller_name, "to": m.to,
               "ownerId": owner_jid, "ownerType": m.owner_type, "private": m.private, "urgent": m.urgent},
    )


def mail_chunk(m: MailItem, number: int, total: int, raw: bytes) -> str:
    return element(
        "MailReceiveIncomingResponse",
        element("fileFormat", text=m.file_format), element("documentName", text=m.document_name),
        element("mediaContent", text=base64.b64encode(raw).decode("ascii")),
        attrs={"mailId": m.mail_id, "chunkNumber": number, "totalChunks": total, "chunkSize": len(raw)},
    )


# -- conferences -----------------------------------------------------------------------------


def conference_fields(c: Conference) -> list[str]:
    return [
        element("confId", text=c.conf_id), element("ownerId", text=c.owner_id), element("name", text=c.name),
        element("accessId", text=c.access_id), element("description", text=c.description),
        element("type", text=c.type), element("startDate", text=c.start_date), element("duration", text=c.duration),
        element("waitForOwner", text=c.wait_for_owner), element("delOnOwnerLeave", text=c.del_on_owner_leave),
        element("ws", text=c.ws), element("wsType", text=c.ws_type),
    ]


def conf_list(confs: Iterable[Conference]) -> str:
    return element("GetConfListResponse", element("conferences", *(element("conf", *conference_fields(c)) for c in confs)))


def conf_event(root: str, c: Conference) -> str:
    return element(root, *conference_fields(c))


def conf_server_info(info: ConfServerInfo) -> str:
    return element(
        "GetConfServerInfoResponse",
        element("extension", text=info.extension), element("DID", text=info.did),
        element("inviteSubject", text=info.invite_subject), element("inviteBody", text=info.invite_body),
        element("inviteMXmeeting", text=info.invite_meeting),
    )


# -- call events -----------------------------------------------------------------------------


def _device(tag: str, identifier: str) -> str:
    return element(tag, element("deviceIdentifier", text=identifier))


def _connection(tag: str, call_id: int, device: str, global_id: str | None = None) -> str:
    return element(tag, element("callID", text=call_id), element("deviceID", text=device),
                   *([element("globalCallID", text=global_id)] if global_id else []))


def _tail(cause: str = "normal", local: str | None = None, flags: bool = True) -> list[str]:
    out = []
    if local is not None:
        out.append(element("localConnectionInfo", text=local))
    out.append(element("cause", text=cause))
    if flags:
        out += [element("cmdsAllowed", text=CMDS_ALLOWED), element("callTypeFlags", text=CALL_TYPE_FLAGS)]
    return out


def _cad(first_call_id: str) -> str:
    return element("cad", attrs={"name": "__FIRST_CALL_ID__", "type": "string"}, text=first_call_id)


def _xref(cross_ref: int) -> str:
    return element("monitorCrossRefID", text=cross_ref)


def delivered(cross_ref: int, call_id: int, global_id: str, first_call_id: str, *, calling: str, calling_name: str,
              called: str, alerting: str, alerting_name: str, last_redirection: str = "") -> str:
    return element(
        "DeliveredEvent", _xref(cross_ref), _connection("connection", call_id, alerting, global_id),
        _device("alertingDevice", alerting), element("alertingDisplayName", text=alerting_name),
        _device("callingDevice", calling), element("callingDisplayName", text=calling_name),
        _device("calledDevice", called), _device("lastRedirectionDevice", last_redirection),
        *_tail(local="alerting"), _cad(first_call_id),
    )


def established(cross_ref: int, call_id: int, global_id: str, first_call_id: str, *, answering: str,
                answering_name: str, calling: str, calling_name: str, called: str, last_redirection: str = "") -> str:
    return element(
        "EstablishedEvent", _xref(cross_ref), _connection("establishedConnection", call_id, answering, global_id),
        _device("answeringDevice", answering), element("answeringDisplayName", text=answering_name),
        _device("callingDevice", calling), element("callingDisplayName", text=calling_name),
        _device("calledDevice", called), _device("lastRedirectionDevice", last_redirection),
        *_tail(local="connected"), _cad(first_call_id),
    )


def originated(cross_ref: int, call_id: int, global_id: str, *, calling: str, called: str) -> str:
    return element(
        "OriginatedEvent", _xref(cross_ref), _connection("originatedConnection", call_id, calling, global_id),
        _device("callingDevice", calling), _device("calledDevice", called), *_tail(local="connected"),
    )


def diverted(cross_ref: int, call_id: int, global_id: str, *, diverting: str, new_destination: str,
             cause: str = "normal") -> str:
    return element(
        "DivertedEvent", _xref(cross_ref), _connection("connection", call_id, diverting, global_id),
        _device("divertingDevice", diverting), _device("newDestination", new_destination),
        _device("lastRedirectionDevice", diverting), *_tail(cause=cause),
    )


def connection_cleared(cross_ref: int, call_id: int, global_id: str, *, dropped: str, releasing: str,
                       cause: str = "normal") -> str:
    return element(
        "ConnectionClearedEvent", _xref(cross_ref), _connection("droppedConnection", call_id, dropped, global_id),
        _device("releasingDevice", releasing), *_tail(cause=cause, local="null", flags=False),
    )


def held(cross_ref: int, call_id: int, global_id: str, *, holding: str) -> str:
    return element(
        "HeldEvent", _xref(cross_ref), _connection("heldConnection", call_id, holding, global_id),
        _device("holdingDevice", holding), *_tail(local="hold"),
    )


def retrieved(cross_ref: int, call_id: int, global_id: str, *, retrieving: str) -> str:
    return element(
        "RetrievedEvent", _xref(cross_ref), _connection("retrievedConnection", call_id, retrieving, global_id),
        _device("retrievingDevice", retrieving), *_tail(local="connected"),
    )


def transfered(cross_ref: int, call_id: int, global_id: str, *, transferring: str, transferred_to: str,
               new_call_id: int) -> str:
    return element(
        "TransferedEvent", _xref(cross_ref), _connection("primaryOldCall", call_id, transferring, global_id),
        _device("transferringDevice", transferring), _device("transferredToDevice", transferred_to),
        element("transferredConnections", element("connectionListItem",
                                                   _connection("newConnection", new_call_id, transferred_to))),
        *_tail(cause="singleStepTransfer", local="null", flags=False),
    )


def recording_state(cross_ref: int, call_id: int, device: str, *, available: bool, active: bool, layout: str) -> str:
    parts = [_xref(cross_ref)]
    if layout in ("root", "both"):
        parts += [element("callID", text=call_id), element("deviceID", text=device)]
    if layout in ("connection", "both"):
        parts.append(_connection("connection", call_id, device))
    parts += [element("RecIsAvailable", text=available), element("RecIsActive", text=active)]
    return element("RecordingStateEvent", *parts)


def call_park_info(cross_ref: int, park_id: int) -> str:
    return element("callParkInfo", _xref(cross_ref), element("parkID", text=park_id))


# -- call control responses ------------------------------------------------------------------


def make_call_response(call_id: int, calling: str, called: str) -> str:
    return element(
        "MakeCallResponse",
        element("callingDevice", element("callID", text=call_id), element("deviceID", text=calling)),
        element("calledDevice", text=called),
    )


def transfer_response(new_call_id: int, to: str) -> str:
    return element("SingleStepTransferCallResponse", _connection("transferredCall", new_call_id, to))


def assign_device_info(device: str) -> str:
    return element("AssignDeviceInfo", element("deviceID", text=device))


def snapshot_device(calls: Iterable[tuple[int, str, str]]) -> str:
    """``calls``: (call id, device, local connection state)."""
    items = [
        element("snapshotDeviceResponseInfo", _connection("connectionIdentifier", cid, dev),
                element("localCallState", element("compoundCallState", element("localConnectionState", text=state))))
        for cid, dev, state in calls
    ]
    return element("SnapshotDeviceResponse", element("crossRefIDorSnapshotData", element("snapshotData", *items)))


def agent_state(logged_on: bool, ready: bool) -> str:
    return element("GetAgentStateResponse", element("loggedOnState", text=logged_on), element("readyState", text=ready))


def element_response(root: str, conf_id: str) -> str:
    """Direct response of the conference commands: the conference id (content not checked)."""
    return element(root, element("confId", text=conf_id))
