"""Builders for every command the client sends (spec §2, §4). Each returns the XML payload.

Values only ever pass through ``xml.element`` (escaping, invalid characters → MXBadRequest), so
user input such as a note, a number or a device name cannot change a command's structure.
Shapes are exactly what MX Proxy 2.3 / the Go clients emit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from mxproxy.connectors.base import CallMode, Conference
from mxproxy.connectors.zultys.xml import element, optional

#: The login attributes MX Proxy 2.3 sends (spec §2.1), in its order.
LOGIN_ATTRIBUTES: dict[str, str] = {
    "type": "User",
    "platform": "iPhone",
    "version": "7.0",
    "loginCapab": "Audio",
    "mediaCapab": "Voicemail|CallRec",
    "push_ntf": "false",
}

LOGOUT = "<logout></logout>"
MONITOR_START_AB = "<MonitorStartAb></MonitorStartAb>"  # as the Go clients write it (spec §4.1)
MONITOR_STOP_AB = "<MonitorStopAb></MonitorStopAb>"
GET_SERVICE_LIST = "<GetServiceList></GetServiceList>"
GET_CONF_SERVER_INFO = "<GetConfServerInfo></GetConfServerInfo>"


def password_hash(password: str) -> str:
    """``base64(sha1(utf8(password))) + "\\n"`` (spec §2.1)."""
    return base64.b64encode(hashlib.sha1(password.encode("utf-8")).digest()).decode("ascii") + "\n"


def looks_hashed(password: str) -> bool:
    """The Go clients' test for a password that is already a hash: sent unchanged."""
    if len(password) <= 4 or not password.endswith("\n"):
        return False
    try:
        return len(base64.b64decode(password[:-1], validate=True)) == 20
    except (binascii.Error, ValueError):
        return False


def login(user: str, password: str, *, clear_text: bool = False) -> str:
    """``loginRequest``; the password is hashed unless ``clear_text`` (the LDAP fallback)."""
    pwd = password if clear_text or looks_hashed(password) else password_hash(password)
    return element("loginRequest", element("userName", text=user), element("pwd", text=pwd), attrs=LOGIN_ATTRIBUTES)


def monitor_start(device: str) -> str:
    return element("MonitorStart", element("monitorObject", element("deviceObject", text=device)))


def monitor_stop(monitor_id: int) -> str:
    return element("MonitorStop", element("monitorCrossRefID", text=int(monitor_id)))


def address_book(index: int) -> str:
    return element("iq", attrs={"type": "get", "id": "addressbook", "index": int(index)})


def call_log(since: int | None) -> str:
    return element("iq", attrs={"type": "get", "id": "calllog", "timestamp": -1 if since is None else int(since)})


def call_mode(mode: CallMode) -> str:
    attrs: dict[str, str | int | None] = {
        "type": "set", "id": "mode", "mode": "remote" if mode.remote else "local",
        "ringdelay": int(mode.ring_delay) or None, "vmdelay": int(mode.vm_delay) or None,
    }
    return element("iq", optional("address", mode.device), attrs=attrs)


def assign_device(name: str) -> str:
    return element("AssignDevice", element("deviceID", attrs={"type": "device"}, text=name))


def make_call(calling: str, called: str) -> str:
    return element(
        "MakeCall",
        element("callingDevice", attrs={"typeOfNumber": "deviceID"}, text=calling),
        element("calledDirectoryNumber", text=called),
    )


def _call_ref(tag: str, call_id: int, device: str) -> str:
    return element(tag, element("callID", text=int(call_id)), element("deviceID", text=device))


def answer_call(call_id: int, device: str) -> str:
    return element("AnswerCall", _call_ref("callToBeAnswered", call_id, device))


def single_step_transfer(call_id: int, device: str, to: str) -> str:
    return element("SingleStepTransferCall", _call_ref("activeCall", call_id, device), element("transferredTo", text=to))


def clear_connection(call_id: int, device: str) -> str:
    return element("ClearConnection", _call_ref("connectionToBeCleared", call_id, device))


def hold_call(call_id: int, device: str) -> str:
    return element("HoldCall", _call_ref("callToBeHeld", call_id, device))


def retrieve_call(call_id: int, device: str) -> str:
    return element("RetrieveCall", _call_ref("callToBeRetrieved", call_id, device))


def recording(start: bool, call_id: int, device: str, group: str = "") -> str:
    return element("StartRecording" if start else "StopRecording", _call_ref("Call", call_id, device),
                   optional("groupID", group))


def presence(status: str, note: str | None) -> str:
    return element("presence", *([element("presenceNote", text=note)] if note is not None else []),
                   attrs={"status": status})


# -- mailbox -----------------------------------------------------------------------------------


def mail_list(extension: str, media_type: str | None) -> str:
    return element("MailGetListIncoming", element("userID", text=extension), optional("mediaType", media_type))


def mail_delete(mail_id: str, media_type: str | None) -> str:
    return element("MailDeleteIncoming", element("mailId", text=mail_id), optional("mediaType", media_type))


def mail_set_read(mail_id: str, read: bool, media_type: str | None) -> str:
    return element("MailSetStatus", element("mailId", text=mail_id), element("read", text=bool(read)),
                   optional("mediaType", media_type))


def mail_note(mail_id: str, note: str, media_type: str | None) -> str:
    return element("UpdateVmNote", element("mailId", text=mail_id), element("note", text=note),
                   optional("mediaType", media_type))


def mail_receive(mail_id: str, media_type: str | None, *, next_chunk: bool = False) -> str:
    return element("MailReceiveIncoming", element("faxSessionID", text=mail_id),
                   *([element("nextChunk")] if next_chunk else []), optional("mediaType", media_type))


def mail_cancel(mail_id: str, media_type: str | None) -> str:
    return element("MailCancelReceive", element("mailId", text=mail_id), optional("mediaType", media_type))


# -- conferences -------------------------------------------------------------------------------


def _conference_fields(c: Conference) -> list[str]:
    return [
        element("confId", text=c.conf_id), element("ownerId", text=int(c.owner_id)), element("name", text=c.name),
        element("accessId", text=int(c.access_id)), element("description", text=c.description),
        element("type", text=c.type), element("startDate", text=int(c.start_date)),
        element("duration", text=int(c.duration)), element("waitForOwner", text=bool(c.wait_for_owner)),
        element("delOnOwnerLeave", text=bool(c.del_on_owner_leave)), element("ws", text=c.ws),
        element("wsType", text=c.ws_type),
    ]


def conference_list(owner_id: int) -> str:
    return element("GetConfList", element("ownerId", text=int(owner_id)), element("iter", text=0))


def create_conference(c: Conference) -> str:
    return element("CreateConference", *_conference_fields(c))


def update_conference(c: Conference) -> str:
    return element("UpdateConference", *_conference_fields(c))


def delete_conference(conf_id: str) -> str:
    return element("DeleteConference", element("confId", text=conf_id))


def join_conference(call_id: str, access_id: int) -> str:
    return element("JoinConf", element("callId", text=call_id), element("accessId", text=int(access_id)))


def conference_from_call(call_id: int, owner_id: int, owner_call_id: int) -> str:
    return element("CreateConfFromCalls", element("callId", text=int(call_id)), element("ownerId", text=int(owner_id)),
                   element("ownerCallId", text=int(owner_call_id)))
