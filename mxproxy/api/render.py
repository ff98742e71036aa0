"""MX Proxy 2.3 JSON: the envelope, the pretty printing and every item shape.

The original (``mdigger/rest``) prints JSON with a 4-space indent and a trailing newline and
omits empty fields per struct tags; apps were written against those shapes, so they are kept
here key for key. Two deliberate differences (docs/compat.md): empty lists are ``[]`` instead of
``null``, and ids stay exact (Python ints never go through floats).
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from starlette.responses import Response

from mxproxy.connectors.base import (
    CallLogEntry,
    Conference,
    ConferenceServerInfo,
    Contact,
    Service,
    Voicemail,
)

JSON_MEDIA_TYPE = "application/json; charset=utf-8"


def dumps(data: Any) -> bytes:
    """4-space indent and a trailing newline, like Go's ``json.Encoder`` with ``SetIndent``.

    Byte for byte what ``json.dumps(data, indent=4, ensure_ascii=False)`` writes, but ~3× faster:
    the standard library drops its C encoder whenever ``indent`` is set, and every API answer is
    indented (it was the largest single cost of ``GET /auth``, docs/benchmarks.md). Strings go
    through the C string escaper; anything unusual (floats, non-string keys, other types) falls
    back to ``json.dumps`` so the output and the errors stay the standard library's.
    """
    out: list[str] = []
    try:
        _encode(data, "\n", out)
    except _Unusual:
        return (json.dumps(data, indent=4, ensure_ascii=False) + "\n").encode("utf-8")
    out.append("\n")
    return "".join(out).encode("utf-8")


class _Unusual(Exception):
    """A value the fast encoder leaves to ``json.dumps``."""


_INDENT = "    "
_encode_str = json.encoder.encode_basestring  # C accelerated when available (ensure_ascii=False)


def _encode(value: Any, newline: str, out: list[str]) -> None:
    """Append ``value``'s JSON; ``newline`` is ``"\\n"`` plus the current indentation."""
    if isinstance(value, str):
        out.append(_encode_str(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + _INDENT
        sep = "{" + inner
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Unusual
            out.append(sep)
            out.append(_encode_str(key))
            out.append(": ")
            _encode(item, inner, out)
            sep = "," + inner
        out.append(newline + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner = newline + _INDENT
        sep = "[" + inner
        for item in value:
            out.append(sep)
            _encode(item, inner, out)
            sep = "," + inner
        out.append(newline + "]")
    else:
        raise _Unusual


class MXJSONResponse(Response):
    media_type = JSON_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return dumps(content)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return MXJSONResponse(data, status_code=status, headers=headers)


def no_content() -> Response:
    """The original answers 204 with an empty body when a handler has nothing to say."""
    return Response(status_code=204)


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """Add ``key`` only when the value is not empty/zero (Go's ``omitempty``)."""
    if value:
        out[key] = value


def contact_json(c: Contact) -> dict[str, Any]:
    out: dict[str, Any] = {"jid": str(c.jid), "firstName": c.first_name, "lastName": c.last_name, "ext": c.ext}
    _put(out, "homePhone", c.home_phone)
    _put(out, "cellPhone", c.cell_phone)
    _put(out, "email", c.email)
    if c.home_system:
        out["homeSystem"] = str(c.home_system)
    _put(out, "did", c.did)
    _put(out, "exchangeId", c.exchange_id)
    return out


def contacts_json(contacts: Iterable[Contact]) -> list[dict[str, Any]]:
    """Sorted by extension as a string, as the original (and the README) promise."""
    return [contact_json(c) for c in sorted(contacts, key=lambda c: (c.ext, c.jid))]


def call_log_entry_json(e: CallLogEntry) -> dict[str, Any]:
    out: dict[str, Any] = {
        "missed": e.missed,
        "direction": e.direction,
        "record_id": e.record_id,
        "gcid": e.gcid,
    }
    _put(out, "connectTimestamp", e.connect_timestamp)
    _put(out, "disconnectTimestamp", e.disconnect_timestamp)
    out["callingPartyNo"] = e.calling_party_no
    out["originalCalledPartyNo"] = e.original_called_party_no
    _put(out, "firstName", e.first_name)
    _put(out, "lastName", e.last_name)
    _put(out, "ext", e.extension)
    _put(out, "serviceName", e.service_name)
    _put(out, "serviceExtension", e.service_extension)
    _put(out, "callType", e.call_type)
    _put(out, "legType", e.leg_type)
    _put(out, "selfLegType", e.self_leg_type)
    _put(out, "monitorType", e.monitor_type)
    return out


def call_log_json(entries: Iterable[CallLogEntry]) -> list[dict[str, Any]]:
    return [call_log_entry_json(e) for e in sorted(entries, key=lambda e: e.record_id)]


def service_json(s: Service) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(s.id), "name": s.name, "type": s.type, "ext": s.ext}
    if s.home_system:
        out["homeSystem"] = str(s.home_system)
    return out


def voicemail_json(v: Voicemail) -> dict[str, Any]:
    out: dict[str, Any] = {"from": v.sender}
    _put(out, "fromName", v.from_name)
    _put(out, "callerName", v.caller_name)
    out["to"] = v.to
    out["ownerType"] = v.owner_type
    out["id"] = str(v.mail_id)
    out["mediaType"] = v.media_type or "VoiceMail"
    out["received"] = v.received
    _put(out, "duration", v.duration)
    _put(out, "read", v.read)
    _put(out, "note", v.note)
    return out


def conference_json(c: Conference) -> dict[str, Any]:
    """``Id`` capitalised and ``ownerId`` a JSON number: the original's shape, kept for apps."""
    out: dict[str, Any] = {
        "Id": c.conf_id,
        "ownerId": c.owner_id,
        "name": c.name,
        "accessId": c.access_id,
    }
    _put(out, "description", c.description)
    out.update(
        {
            "type": c.type,
            "startDate": c.start_date,
            "duration": c.duration,
            "waitForOwner": c.wait_for_owner,
            "delOnOwnerLeave": c.del_on_owner_leave,
            "ws": c.ws,
            "wsType": c.ws_type,
        }
    )
    return out


def conference_info_json(i: ConferenceServerInfo) -> dict[str, Any]:
    return {
        "ext": i.extension,
        "did": i.did,
        "subject": i.invite_subject,
        "body": i.invite_body,
        "meeting": i.invite_meeting,
    }
