"""The OpenAPI 3.1 description of the public API, served at ``/openapi.json``.

Hand-written (the handlers are plain Starlette functions) and kept true by two tests:
``tests/api/test_openapi.py`` (paths and methods equal the app's routes) and
``tests/api/test_openapi_conformance.py`` (schemathesis generates requests from this document,
valid and invalid, and checks every answer's status, content type, headers and body against it).

What the document promises, so that a generated request is accepted exactly when it is valid:

* Request bodies come in two encodings with their own schemas. JSON has real types (an integral
  ``30.0`` is an integer, ``null`` means "not given", ids may also be digit strings, A24);
  ``application/x-www-form-urlencoded`` values are strings with the patterns the form parser
  accepts (``mxproxy/api/bodies.py``: booleans ``1/t/true/yes/on/0/f/false/no/off`` in any case and
  an empty value meaning true, integers as ASCII digits with an empty value meaning 0; spec §7.2).
* Strings that reach the MX must be XML characters (``TEXT``); others answer 400.
* ``/calls/{id}`` ids are int64 (else 404), voicemail and conference ids 1–64 characters (else 404).
* Every status a route can answer is listed; 401s carry ``WWW-Authenticate``.
"""

from __future__ import annotations

from typing import Any

from mxproxy import __version__

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT16_MAX = 65535
MEDIA_TYPES = ["VoiceMail", "Recording", "Fax", "Undefined"]  # mxproxy.api.voicemails.MEDIA_TYPES


def _at_most(bound: str) -> str:
    """A regex alternation for decimal strings (no sign) whose value is <= ``bound``."""
    parts = [f"[0-9]{{1,{len(bound) - 1}}}"] if len(bound) > 1 else []
    for i, digit in enumerate(bound):
        if digit != "0":
            low = "0" if digit == "1" else f"0-{int(digit) - 1}"
            rest = len(bound) - i - 1
            parts.append(bound[:i] + f"[{low}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    parts.append(bound)
    return "|".join(parts)


# ASCII digits with an optional minus, within int64 (leading zeros allowed): bodies.parse_int_text
INT64_TEXT = f"^(0*({_at_most(str(INT64_MAX))})|-0*({_at_most(str(-INT64_MIN))}))$"
UINT16_FORM = f"^(|0*({_at_most(str(UINT16_MAX))})|-0+)$"  # form: empty = 0, "-0" is 0 too
INT64_FORM = f"^(|{INT64_TEXT[2:-2]})$"
BOOL_FORM = "^(|1|0|[Tt]([Rr][Uu][Ee])?|[Ff]([Aa][Ll][Ss][Ee])?|[Yy][Ee][Ss]|[Nn][Oo]|[Oo][Nn]|[Oo][Ff][Ff])$"
# Characters XML 1.0 can carry (mxproxy.connectors.zultys.xml): anything else cannot reach the MX.
XML_CHARS = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\uFFFE\\uFFFF]*$"

_S: dict[str, Any] = {"type": "string"}
_I: dict[str, Any] = {"type": "integer", "format": "int64", "minimum": INT64_MIN, "maximum": INT64_MAX}
_B: dict[str, Any] = {"type": "boolean"}
TEXT: dict[str, Any] = {"type": "string", "pattern": XML_CHARS}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(*, required: tuple[str, ...] = (), **props: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    return schema


def _list(key: str, item: str) -> dict[str, Any]:
    return _obj(required=(key,), **{key: {"type": "array", "items": _ref(item)}})


# --- request bodies: one field list, two encodings ---------------------------------------------

# field kinds: text (XML-safe string), str (any string), bool, int, uint16, id (int64, JSON also "123")
_JSON_FIELD: dict[str, dict[str, Any]] = {
    "text": {**TEXT, "type": ["string", "null"]},
    "str": {"type": ["string", "null"]},
    "bool": {"type": ["boolean", "null"]},
    "int": {**_I, "type": ["integer", "null"]},
    "uint16": {"type": ["integer", "null"], "minimum": 0, "maximum": UINT16_MAX},
    "id": {"anyOf": [{**_I, "type": ["integer", "null"]}, {"type": "string", "pattern": INT64_TEXT}]},
}
_FORM_FIELD: dict[str, dict[str, Any]] = {
    "text": TEXT,
    "str": _S,
    "bool": {"type": "string", "pattern": BOOL_FORM},
    "int": {"type": "string", "pattern": INT64_FORM},
    "uint16": {"type": "string", "pattern": UINT16_FORM},
    "id": {"type": "string", "pattern": INT64_FORM},
}

# name → ({field: kind}, fields that must be present and non-empty)
BODIES: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "CallModeBody": ({"remote": "bool", "device": "text", "ringDelay": "uint16", "vmDelay": "uint16"}, ()),
    "MakeCall": ({"from": "text", "to": "text", "device": "text"}, ("to",)),
    "SipAnswer": ({"device": "text", "assign": "bool", "timeout": "int", "callId": "id"}, ()),
    "Transfer": ({"device": "text", "to": "text", "callId": "id"}, ("to",)),
    "Recording": ({"deviceID": "text", "groupID": "text"}, ()),
    "ConferenceFromCall": ({"ownerCallId": "id"}, ()),
    "VoicemailUpdate": ({"read": "bool", "note": "text"}, ()),
    "ConferenceBody": ({"Id": "str", "ownerId": "id", "name": "text", "accessId": "id", "description": "text",
                        "type": "text", "startDate": "int", "duration": "int", "waitForOwner": "bool",
                        "delOnOwnerLeave": "bool", "ws": "text", "wsType": "text"}, ()),
    "ConferenceJoin": ({"accessId": "id"}, ()),
}


def _body_schema(name: str, form: bool) -> dict[str, Any]:
    fields, required = BODIES[name]
    table = _FORM_FIELD if form else _JSON_FIELD
    props: dict[str, Any] = {}
    for field, kind in fields.items():
        schema = dict(table[kind])
        if field in required:  # present, not null, not empty
            schema = {**schema, "type": "string", "minLength": 1}
        props[field] = schema
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    if name == "VoicemailUpdate":
        # at least one of them given (JSON null = not given)
        schema["anyOf"] = [{"required": [f], "properties": {f: {"not": {"type": "null"}}}} for f in fields]
    elif not form and not required:
        schema["type"] = ["object", "null"]  # a JSON null body = no fields given
    return schema


def _request_body(name: str) -> dict[str, Any]:
    _, required = BODIES[name]
    return {
        "required": bool(required) or name == "VoicemailUpdate",
        "description": "JSON, or a form (also multipart/form-data) with the same fields as strings; "
                       "no body means no fields given",
        "content": {
            "application/json": {"schema": _ref(name)},
            "application/x-www-form-urlencoded": {"schema": _ref(name + "Form")},
        },
    }


# --- responses ---------------------------------------------------------------------------------

_ERROR = {"$ref": "#/components/responses/Error"}
_ERRORS: dict[str, Any] = {
    "400": _ERROR,
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": _ERROR,
    "404": _ERROR,
    "409": _ERROR,
    "413": _ERROR,
    "429": {"$ref": "#/components/responses/Throttled"},
    "501": _ERROR,
    "502": _ERROR,
    "503": {"$ref": "#/components/responses/Unavailable"},
    "504": {"$ref": "#/components/responses/UnknownOutcome"},
}
# an MX command: refused (400, CSTA error or characters XML cannot carry), unsupported by the
# connector (501), an MX answer larger than one CSTA frame (502), connection lost (503), no answer
# in time (504: unknown outcome)
MX = ("400", "501", "502", "503", "504")
# a creating route: Idempotency-Key (mxproxy/api/idempotency.py), reused for another request → 409
CREATES = ("409", *MX)
BODY = ("400", "413")  # malformed JSON, wrong types, unsupported content type or charset; too large


def _op(summary: str, ok: dict[str, Any] | None = None, *, status: str = "200", errors: tuple[str, ...] = (),
        body: str | None = None, params: list[dict[str, Any]] | None = None, auth: str = "bearer",
        description: str | None = None) -> dict[str, Any]:
    """One operation: the success answer, the error statuses, security, body and parameters."""
    responses: dict[str, Any] = {}
    if status == "204":
        responses["204"] = {"description": "done, empty body"}
    else:
        responses[status] = {"description": "OK", "content": {"application/json": {"schema": ok or {"type": "object"}}}}
    codes = {"401", "503", *errors} if auth == "bearer" else set(errors)
    if body:
        codes.update(BODY)
    for code in sorted(codes):
        responses[code] = _ERRORS[code]
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if description:
        op["description"] = description
    if auth in ("bearer", "sign-out"):  # sign-out: a bad or missing token is 403, not 401
        op["security"] = [{"bearer": []}]
    elif auth == "basic":
        op["security"] = [{"clientBasic": []}]
    else:
        op["security"] = [{"clientBasic": []}, {"azureBearer": []}]
    if body:
        op["requestBody"] = _request_body(body)
    if params:
        op["parameters"] = params
    return op


# --- parameters --------------------------------------------------------------------------------

_CALL_ID = {"name": "id", "in": "path", "required": True, "schema": _I,
            "description": "MX call id (int64); anything else answers 404"}
_DEVICE_NAME = {"name": "id", "in": "path", "required": True, "description": "the device name to assign",
                "schema": {**TEXT, "minLength": 1}}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
    "description": "a repeat with the same key within `[server] idempotencyTTL` (10 min) answers the first "
                   "request's outcome again (header `Idempotent-Replayed: true`) instead of running it twice; "
                   "the same key with another request answers 409, a malformed key 400",
}
_ITEM_ID = {"name": "id", "in": "path", "required": True, "description": "1–64 characters; longer answers 404",
            "schema": {**TEXT, "minLength": 1, "maxLength": 64}}
_MEDIA = {"name": "media", "in": "query", "required": False, "description": "empty or absent: every media type",
          "schema": {"type": "string", "enum": ["", *MEDIA_TYPES]}}
_DEVICE = {"name": "device", "in": "query", "required": False, "schema": TEXT,
           "description": "the call leg's device (empty or absent: the user's extension)"}
_TIMESTAMP = {"name": "timestamp", "in": "query", "required": False,
              "description": "only calls after it: Unix seconds (negative or empty: the whole log) or an "
                             "RFC 3339 date-time; anything else answers 400 `bad timestamp format`",
              "schema": {"anyOf": [{"type": "string", "pattern": "^(-?[0-9]+)?$"},
                                   {"type": "string", "format": "date-time"}]}}
_TOKEN_PARAMS = [
    {"name": "kind", "in": "path", "required": True, "schema": {"type": "string", "enum": ["apn", "fcm"]},
     "description": "another kind answers 404"},
    {"name": "topic", "in": "path", "required": True, "schema": _S,
     "description": "an APNs topic or FCM app id this server pushes to (else 404)"},
    {"name": "token", "in": "path", "required": True,
     "schema": {"type": "string", "pattern": "^[A-Za-z0-9_:.-]{20,4096}$"},
     "description": "APNs: 20–512 hex digits; FCM: 20–4096 URL-safe characters (else 400 `bad push token`)"},
    {"name": "sandbox", "in": "query", "required": False, "schema": _S,
     "description": "APNs sandbox when present, unless false/0/no/off"},
]

# --- schemas -----------------------------------------------------------------------------------

SCHEMAS: dict[str, Any] = {
    "Error": {**_obj(error=_S), "additionalProperties": False, "description": "`{}` when there is no message"},
    "Token": _obj(required=("token_type", "access_token", "expires_in"),
                  token_type={"const": "Bearer"}, access_token=_S, expires_in={"type": "integer"}),
    "PasswordGrant": _obj(required=("grant_type",), grant_type={"const": "password"}, username=_S, password=_S),
    "UserInfo": _obj(required=("mx", "ext", "jid", "softPhonePwd"), mx=_S, ext=_S, jid=_S, softPhonePwd=_S),
    "Contact": _obj(required=("jid", "firstName", "lastName", "ext"), jid=_S, firstName=_S, lastName=_S, ext=_S,
                    homePhone=_S, cellPhone=_S, email=_S, homeSystem=_S, did=_S, exchangeId=_S),
    "Service": _obj(required=("id", "name", "type", "ext"), id=_S, name=_S, type=_S, ext=_S, homeSystem=_S),
    "CallLogEntry": _obj(required=("missed", "direction", "record_id", "gcid", "callingPartyNo",
                                   "originalCalledPartyNo"),
                         missed=_B, direction=_S, record_id=_I, gcid=_S, connectTimestamp=_I,
                         disconnectTimestamp=_I, callingPartyNo=_S, originalCalledPartyNo=_S, firstName=_S,
                         lastName=_S, ext=_S, serviceName=_S, serviceExtension=_S, callType=_I, legType=_I,
                         selfLegType=_I, monitorType=_I),
    "CallMode": _obj(required=("remote", "device", "ringDelay", "vmDelay"), remote=_B, device=_S,
                     ringDelay={"type": "integer", "minimum": 0, "maximum": UINT16_MAX},
                     vmDelay={"type": "integer", "minimum": 0, "maximum": UINT16_MAX}),
    "CallEvent": {"type": "object", "description": "MX Proxy event JSON (as pushed)", "additionalProperties": True},
    "Voicemail": _obj(required=("from", "to", "ownerType", "id", "mediaType", "received"),
                      **{"from": _S, "fromName": _S, "callerName": _S, "to": _S, "ownerType": _S, "id": _S,
                         "mediaType": _S, "received": _I, "duration": _I, "read": _B, "note": _S}),
    "Conference": _obj(required=("Id", "ownerId", "name", "accessId", "type", "startDate", "duration",
                                 "waitForOwner", "delOnOwnerLeave", "ws", "wsType"),
                       Id=_S, ownerId=_I, name=_S, accessId=_I, description=_S, type=_S, startDate=_I,
                       duration=_I, waitForOwner=_B, delOnOwnerLeave=_B, ws=_S, wsType=_S),
    "ConferenceServerInfo": _obj(required=("ext", "did", "subject", "body", "meeting"),
                                 ext=_S, did=_S, subject=_S, body=_S, meeting=_S),
}

# --- the event stream (docs/events.md): GET /events data and webhook bodies -------------------

_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
_SIDE: dict[str, Any] = {"enum": ["local", "remote"]}
_CALL_KEYS = ("callId", "callUUID", "globalCallId", "direction", "localNumber", "localName", "remoteNumber",
              "remoteName", "startTime", "answerTime")


def _with_call(*, required: tuple[str, ...] = (), **props: Any) -> dict[str, Any]:
    return {"allOf": [_ref("CallEventData"), _obj(required=required, **props)]}


def _event_name(event_type: str) -> str:
    """``call.ringing`` -> ``CallRingingEvent``."""
    return "".join(part.capitalize() for part in event_type.split(".")) + "Event"


EVENT_DATA: dict[str, str] = {
    "call.ringing": "CallEventData", "call.dialing": "CallEventData", "call.answered": "CallEventData",
    "call.held": "CallHoldData", "call.resumed": "CallHoldData", "call.transferred": "CallTransferredData",
    "call.ended": "CallEndedData", "voicemail.new": "VoicemailNewData", "voicemail.read": "VoicemailReadData",
    "presence.changed": "PresenceChangedData", "contacts.changed": "ContactsChangedData",
}
EVENT_SCHEMAS: dict[str, Any] = {
    "EventEnvelope": {**_obj(required=("id", "type", "time", "user", "data"),
                             id={"type": "integer", "minimum": 1, "maximum": 2**53 - 1,
                                 "description": "increases per user (docs/events.md, Ids)"},
                             type={"enum": list(EVENT_DATA)}, time=_TIME, user=_S, data={"type": "object"}),
                      "description": "One event of the normalised stream: SSE `data:` and webhook body"},
    "CallEventData": _obj(required=_CALL_KEYS, callId=_I, callUUID={"type": "string", "format": "uuid"},
                          globalCallId=_S, direction={"enum": ["incoming", "outgoing"]}, localNumber=_S,
                          localName=_S, remoteNumber=_S, remoteName=_S, startTime=_TIME,
                          answerTime={**_TIME, "type": ["string", "null"]}),
    "CallHoldData": _with_call(required=("by",), by=_SIDE),
    "CallTransferredData": _with_call(required=("by", "transferredTo"), by=_SIDE, transferredTo=_S),
    "CallEndedData": _with_call(
        required=("endTime", "duration", "missed", "reason", "cause"), endTime=_TIME,
        duration={"type": "number", "minimum": 0}, missed=_B,
        reason={"enum": ["hangup", "transferred", "diverted", "answered-elsewhere", "failed"]}, cause=_S,
        endedBy=_SIDE, divertedTo=_S, answeredBy=_S),
    "VoicemailNewData": _obj(required=("mailId", "mediaType", "from", "fromName", "callerName", "to", "gcid",
                                       "received", "duration", "urgent", "private", "note"),
                             **{"mailId": _S, "mediaType": _S, "from": _S, "fromName": _S, "callerName": _S,
                                "to": _S, "gcid": _S, "received": {**_TIME, "type": ["string", "null"]},
                                "duration": _I, "urgent": _B, "private": _B, "note": _S}),
    "VoicemailReadData": _obj(required=("mailId", "mediaType"), mailId=_S, mediaType=_S),
    "PresenceChangedData": _obj(required=("userId", "self", "status", "mxStatus", "note"), userId=_I,
                                self=_B, status=_S, mxStatus={"type": "array", "items": _S}, note=_S),
    "ContactsChangedData": _obj(
        required=("change", "userId", "contact"), change={"enum": ["add", "update", "delete"]}, userId=_I,
        contact={"oneOf": [{"type": "null"}, _obj(
            required=("jid", "ext", "firstName", "lastName", "email", "cellPhone", "homePhone", "did"),
            jid=_I, ext=_S, firstName=_S, lastName=_S, email=_S, cellPhone=_S, homePhone=_S, did=_S)]}),
}
for _type, _data in EVENT_DATA.items():
    EVENT_SCHEMAS[_event_name(_type)] = {"allOf": [_ref("EventEnvelope"), _obj(
        type={"const": _type}, data=_ref(_data))]}
EVENT_SCHEMAS["Event"] = {"oneOf": [_ref(_event_name(t)) for t in EVENT_DATA],
                          "description": "Any event of the stream (docs/events.md); `type` tells which"}
SCHEMAS.update(EVENT_SCHEMAS)

for _name in BODIES:
    SCHEMAS[_name] = _body_schema(_name, form=False)
    SCHEMAS[_name + "Form"] = _body_schema(_name, form=True)


# --- GET /events ([sse] enabled) -----------------------------------------------------------------

_EVENT_ID_DOC = ("an event id (the `id:` of an event, or the `lastId` of `event: end`): the stream starts "
                 "with exactly the events after it still in the history (`event: gap` first when the "
                 "history no longer reaches back that far)")


def _events_operation() -> dict[str, Any]:
    from mxproxy.api.events import types_pattern

    types = {"name": "types", "in": "query", "required": False,
             "description": "only these event types: a comma-separated list of names and `prefix.*` "
                            "wildcards (e.g. `call.*,voicemail.new`); absent: every type; an unknown "
                            "name answers 400",
             "schema": {"type": "string", "pattern": types_pattern()}}
    since = {"name": "since", "in": "query", "required": False, "description": _EVENT_ID_DOC,
             "schema": {"type": "integer", "minimum": 0, "maximum": INT64_MAX}}
    last_event_id = {"name": "Last-Event-ID", "in": "header", "required": False,
                     "description": "what an `EventSource` sends when it reconnects; wins over `since`. "
                                    + _EVENT_ID_DOC,
                     "schema": {"type": "string", "pattern": f"^(0*({_at_most(str(INT64_MAX))}))?$"}}
    op = _op("The user's events, live (Server-Sent Events)", errors=("400", "429"),
             params=[types, since, last_event_id],
             description="`text/event-stream`: each event as `id:` (increasing per user), `event:` (its type) "
                         "and `data:` (its JSON, docs/events.md); `: heartbeat` comments after `[sse] heartbeat` "
                         "without a write; `event: gap` when a replay cannot reach back to the id given; the "
                         "stream ends with `event: end` and `data: {\"reason\": …, \"lastId\": …}` (reasons: "
                         "`signed-out`, `needs-reauth`, `token-expired`, `overflow`, `moved`, `shutdown`, "
                         "`max-duration`). "
                         "At most `[sse] maxPerUser` streams per user and `maxStreams` per server (else 429).")
    op["responses"]["200"] = {
        "description": "the stream (until `event: end`, or the client closes it)",
        "headers": {"Cache-Control": {"required": True, "schema": {"const": "no-store"}}},
        "content": {"text/event-stream": {"schema": _ref("StreamEvent")}},
    }
    op["responses"]["429"] = {"$ref": "#/components/responses/StreamsLimited"}
    return {"get": op}


def _add_events(doc: dict[str, Any]) -> None:
    """``GET /events`` and what only it refers to (``[sse] enabled``)."""
    from mxproxy.events.model import EVENT_TYPES

    doc["paths"]["/events"] = _events_operation()
    components = doc["components"]
    # one frame as an SSE parser sees it (OpenAPI 3.1: the media type's schema describes each event)
    json_text = {"type": "string", "contentMediaType": "application/json"}
    frame = {"id": {"type": "string", "pattern": "^[0-9]+$"}, "retry": {"type": "integer", "minimum": 0}}
    components["schemas"] = {**components["schemas"], "StreamEvent": {
        "description": "One frame as an SSE parser sees it (OpenAPI 3.1: the media type's schema describes "
                       "each event): an event (`event` = its type, `data` = its JSON), `gap` (events after "
                       "`after` may be missing) or `end` (resume after `lastId`; null: after the last id seen)",
        "oneOf": [
            _obj(required=("event", "data"), event={"enum": list(EVENT_TYPES)},
                 data={**json_text, "contentSchema": _ref("Event")}, **frame),
            _obj(required=("event", "data"), event={"const": "gap"}, data={**json_text, "contentSchema": _obj(
                required=("after",), after={"type": "integer", "minimum": 0})}, **frame),
            _obj(required=("event", "data"), event={"const": "end"}, data={**json_text, "contentSchema": _obj(
                required=("reason", "lastId"), reason=_S, lastId={"type": ["integer", "null"]})}, **frame),
        ],
    }}
    components["responses"]["StreamsLimited"] = {
        "description": "too many open event streams for this user (`[sse] maxPerUser`) or on this server "
                       "(`maxStreams`)",
        "headers": {"Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
        "content": {"application/json": {"schema": _ref("Error")}},
    }


def openapi_document(*, sse: bool = False) -> dict[str, Any]:
    """``sse``: ``[sse] enabled`` (``GET /events`` exists only then)."""
    paths: dict[str, Any] = {
        "/auth": {
            "post": {
                **_op("Sign in (OAuth2 password grant with client Basic auth, or an Azure AD id_token)",
                      _ref("Token"), errors=("400", "401", "403", "404", "413", "429", "502", "503", "504"),
                      auth="client",
                      description="Provisioning answers other than 2xx are passed through with their status. "
                                  "Attempts are limited per client address and per sign-in name ([signin]); "
                                  "every answer carries X-RateLimit-Limit/-Remaining/-Reset (Unix time)."),
                "requestBody": {"required": False, "content": {
                    "application/x-www-form-urlencoded": {"schema": _ref("PasswordGrant")}}},
            },
            "get": _op("The signed-in MX user", _ref("UserInfo")),
            "delete": _op("Sign out: close the MX session, forget the user and their device tokens",
                          _obj(required=("userLogout",), userLogout=_S), errors=("403", "404", "503"),
                          auth="sign-out"),
        },
        "/auth/logout": {"delete": _op("Same as DELETE /auth (the README's spelling)",
                                       _obj(required=("userLogout",), userLogout=_S), errors=("403", "404", "503"),
                                       auth="sign-out")},
        "/contacts": {"get": _op("MX directory, sorted by extension", _list("contacts", "Contact"), errors=MX)},
        "/services": {"get": _op("MX services", _list("services", "Service"), errors=MX)},
        "/calls": {
            "get": _op("Call log, sorted by record_id", _list("callLog", "CallLogEntry"), errors=MX,
                       params=[_TIMESTAMP]),
            "patch": _op("Set the call mode", _obj(required=("callMode",), callMode=_ref("CallMode")), errors=MX,
                         body="CallModeBody"),
            "post": _op("Server call (assigning `device` first when given)",
                        _obj(required=("makeCall",), makeCall=_obj(required=("callId", "deviceId", "calledDevice"),
                                                                   callId=_I, deviceId=_S, calledDevice=_S)),
                        errors=CREATES, body="MakeCall", params=[_IDEMPOTENCY_KEY]),
        },
        "/calls/{id}": {
            "get": _op("Stored Delivered/Established info of a current call",
                       _obj(required=("callInfo",), callInfo=_ref("CallEvent")), errors=("404",),
                       params=[_CALL_ID]),
            "put": _op("Answer the call on a (SIP) device",
                       _obj(required=("sipAnswer",), sipAnswer=_obj(required=("callId", "device", "timeout", "assign"),
                                                                    callId=_I, device=_S, timeout=_I, assign=_B)),
                       errors=("404", *MX), body="SipAnswer", params=[_CALL_ID]),
            "post": _op("Single-step transfer",
                        _obj(required=("transfer",), transfer=_obj(required=("callId", "device", "to"),
                                                                   callId=_I, device=_S, to=_S)),
                        errors=("404", *CREATES), body="Transfer", params=[_CALL_ID, _IDEMPOTENCY_KEY]),
            "delete": _op("Hang up", _obj(required=("connectionCleared",), connectionCleared=_ref("CallEvent")),
                          errors=("404", *MX), params=[_CALL_ID, _DEVICE]),
            "patch": _op("Assign a named device to the session (the path segment is the device name)",
                         status="204", errors=MX, params=[_DEVICE_NAME]),
        },
        "/calls/{id}/hold": {"put": _op("Hold", _obj(required=("held",), held=_ref("CallEvent")),
                                        errors=("404", *MX), params=[_CALL_ID, _DEVICE])},
        "/calls/{id}/unhold": {"put": _op("Retrieve", _obj(required=("retrieved",), retrieved=_ref("CallEvent")),
                                          errors=("404", *MX), params=[_CALL_ID, _DEVICE])},
        "/calls/{id}/record": {"post": _op("Start recording", status="204", errors=("404", *MX),
                                           body="Recording", params=[_CALL_ID])},
        "/calls/{id}/record/stop": {"post": _op("Stop recording", status="204", errors=("404", *MX),
                                                body="Recording", params=[_CALL_ID])},
        "/calls/{id}/conference": {"post": _op("Make a conference from calls", status="204",
                                               errors=("404", *CREATES), body="ConferenceFromCall",
                                               params=[_CALL_ID, _IDEMPOTENCY_KEY])},
        "/voicemails": {"get": _op("Voicemails / recordings / faxes, oldest first",
                                   _list("voiceMails", "Voicemail"), errors=MX, params=[_MEDIA])},
        "/voicemails/{id}": {
            "get": _op("Download the message (streamed)", errors=("404", *MX), params=[_ITEM_ID, _MEDIA]),
            "delete": _op("Delete", status="204", errors=("404", *MX), params=[_ITEM_ID, _MEDIA]),
            "patch": _op("Mark read and/or set the note",
                         _obj(required=("vm",), vm=_obj(read=_B, note=_S)),
                         errors=("404", *MX), body="VoicemailUpdate", params=[_ITEM_ID, _MEDIA]),
        },
        "/conferences/info": {"get": _op("Conference server settings",
                                         _obj(required=("conferences",), conferences=_ref("ConferenceServerInfo")),
                                         errors=MX)},
        "/conferences": {
            "get": _op("Conferences", _list("conferences", "Conference"), errors=MX),
            "post": _op("Create a conference (at most `[server] maxConferences` per user: beyond, 409)",
                        _obj(required=("conference",), conference=_ref("Conference")),
                        errors=CREATES, body="ConferenceBody", params=[_IDEMPOTENCY_KEY]),
        },
        "/conferences/{id}": {
            "put": _op("Update a conference (`Id` is the path's)",
                       _obj(required=("conference",), conference=_ref("Conference")),
                       errors=("404", *MX), body="ConferenceBody", params=[_ITEM_ID]),
            "post": _op("Join a conference (id = call id)", status="204", errors=("404", *MX),
                        body="ConferenceJoin", params=[_ITEM_ID]),
            "delete": _op("Delete a conference", status="204", errors=("404", *MX), params=[_ITEM_ID]),
        },
        "/tokens/{kind}/{topic}/{token}": {
            "put": _op("Register a device push token", status="204", errors=("400", "404"), params=_TOKEN_PARAMS),
            "delete": _op("Unregister a device push token", status="204", errors=("400", "404"),
                          params=_TOKEN_PARAMS),
        },
        "/debug/log": {"get": _op("The server log, secrets redacted", auth="basic", errors=("401", "403", "404"))},
        "/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {
            "200": {"description": "OpenAPI 3.1 document", "content": {"application/json": {"schema": _obj(
                required=("openapi", "info", "paths"), openapi=_S, info={"type": "object"},
                paths={"type": "object"})}}}}}},
    }
    # Non-JSON success bodies
    paths["/voicemails/{id}"]["get"]["responses"]["200"] = {
        "description": "the file; `audio/wave` for WAV, else the type of the MX's file format",
        "headers": {"Content-Disposition": {"required": True, "schema": _S}},
        "content": {"audio/wave": {}, "*/*": {}},
    }
    paths["/debug/log"]["get"]["responses"]["200"] = {"description": "log text", "content": {"text/plain": {}}}
    for op in (paths["/auth"]["delete"], paths["/auth/logout"]["delete"]):
        op["description"] = "A missing or invalid token answers 403 (not 401), as the original."
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "mxproxy public API (MX Proxy 2.3 compatible)", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": {
                "Error": {"description": "error", "content": {"application/json": {"schema": _ref("Error")}}},
                "Unauthorized": {
                    "description": "missing or invalid credentials, or the user is not signed in",
                    "headers": {"WWW-Authenticate": {"required": True, "schema": _S}},
                    "content": {"application/json": {"schema": _ref("Error")}},
                },
                "UnknownOutcome": {
                    "description": "the MX did not answer in time: **unknown outcome** — the command may still "
                                   "have been carried out (a call placed seconds later). Retry a creating "
                                   "request only with the same `Idempotency-Key`.",
                    "content": {"application/json": {"schema": _ref("Error")}},
                },
                "Throttled": {
                    "description": "too many sign-in attempts from this client or for this name",
                    "headers": {"Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
                    "content": {"application/json": {"schema": _ref("Error")}},
                },
                "Unavailable": {
                    "description": "MX connection being re-established (with Retry-After), store or keys unavailable",
                    "headers": {"Retry-After": {"required": False, "schema": {"type": "string",
                                                                              "pattern": "^[0-9]+$"}}},
                    "content": {"application/json": {"schema": _ref("Error")}},
                },
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "clientBasic": {"type": "http", "scheme": "basic", "description": "OAuth2 client id and secret"},
                "azureBearer": {"type": "http", "scheme": "bearer", "description": "Azure AD id_token"},
            },
        },
    }
    if sse:
        _add_events(doc)
    return doc
