"""The OpenAPI 3.1 description of the public API, served at ``/openapi.json``.

Hand-written (the handlers are plain Starlette functions); ``tests/api/test_openapi.py`` keeps
its paths and methods equal to the app's routes.
"""

from __future__ import annotations

from typing import Any

from mxproxy import __version__

_ERR = {"$ref": "#/components/responses/Error"}


def _op(summary: str, ok: dict[str, Any] | None = None, *, status: str = "200", errors: tuple[str, ...] = (),
        body: str | None = None, params: list[dict[str, Any]] | None = None, auth: str = "bearer") -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if status == "204":
        responses["204"] = {"description": "done, empty body"}
    else:
        responses[status] = {"description": "OK", "content": {"application/json": {"schema": ok or {"type": "object"}}}}
    for code in ("401", "503", *errors):
        responses[code] = _ERR
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if auth == "bearer":
        op["security"] = [{"bearer": []}]
    elif auth == "basic":
        op["security"] = [{"clientBasic": []}]
    else:
        op["security"] = [{"clientBasic": []}, {"azureBearer": []}]
    if body:
        op["requestBody"] = {
            "required": False,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}},
                "application/x-www-form-urlencoded": {"schema": {"$ref": f"#/components/schemas/{body}"}},
            },
        }
    if params:
        op["parameters"] = params
    return op


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


def _list(key: str, item: str) -> dict[str, Any]:
    return _obj(**{key: {"type": "array", "items": _ref(item)}})


_S = {"type": "string"}
_I = {"type": "integer", "format": "int64"}
_B = {"type": "boolean"}
_ID = {"name": "id", "in": "path", "required": True, "schema": _S}
_CALL_ID = {"name": "id", "in": "path", "required": True, "schema": _I, "description": "MX call id (int64)"}
_MEDIA = {"name": "media", "in": "query", "required": False,
          "schema": {"type": "string", "examples": ["VoiceMail", "Recording", "Fax"]}}
_DEVICE = {"name": "device", "in": "query", "required": False, "schema": _S,
           "description": "the call leg's device (default: the user's extension)"}
_TOKEN_PARAMS = [
    {"name": "kind", "in": "path", "required": True, "schema": {"type": "string", "enum": ["apn", "fcm"]}},
    {"name": "topic", "in": "path", "required": True, "schema": _S},
    {"name": "token", "in": "path", "required": True, "schema": _S},
    {"name": "sandbox", "in": "query", "required": False, "schema": _S,
     "description": "APNs sandbox when present, unless false/0"},
]

SCHEMAS: dict[str, Any] = {
    "Error": _obj(error=_S),
    "Token": _obj(token_type=_S, access_token=_S, expires_in={"type": "integer"}),
    "PasswordGrant": _obj(grant_type={"const": "password"}, username=_S, password=_S),
    "UserInfo": _obj(mx=_S, ext=_S, jid=_S, softPhonePwd=_S),
    "Contact": _obj(jid=_S, firstName=_S, lastName=_S, ext=_S, homePhone=_S, cellPhone=_S, email=_S,
                    homeSystem=_S, did=_S, exchangeId=_S),
    "Service": _obj(id=_S, name=_S, type=_S, ext=_S, homeSystem=_S),
    "CallLogEntry": _obj(missed=_B, direction=_S, record_id=_I, gcid=_S, connectTimestamp=_I,
                         disconnectTimestamp=_I, callingPartyNo=_S, originalCalledPartyNo=_S, firstName=_S,
                         lastName=_S, ext=_S, serviceName=_S, serviceExtension=_S, callType=_I, legType=_I,
                         selfLegType=_I, monitorType=_I),
    "CallMode": _obj(remote=_B, device=_S, ringDelay=_I, vmDelay=_I),
    "MakeCall": _obj(**{"from": _S, "to": _S, "device": _S}),
    "SipAnswer": _obj(device=_S, assign=_B, timeout=_I),
    "Transfer": _obj(device=_S, to=_S),
    "Recording": _obj(deviceID=_S, groupID=_S),
    "ConferenceFromCall": _obj(ownerCallId=_I),
    "CallEvent": {"type": "object", "description": "MX Proxy event JSON (as pushed)", "additionalProperties": True},
    "Voicemail": _obj(**{"from": _S, "fromName": _S, "callerName": _S, "to": _S, "ownerType": _S, "id": _S,
                         "mediaType": _S, "received": _I, "duration": _I, "read": _B, "note": _S}),
    "VoicemailUpdate": _obj(read=_B, note=_S),
    "Conference": _obj(Id=_S, ownerId=_I, name=_S, accessId=_I, description=_S, type=_S, startDate=_I,
                       duration=_I, waitForOwner=_B, delOnOwnerLeave=_B, ws=_S, wsType=_S),
    "ConferenceJoin": _obj(accessId=_I),
    "ConferenceServerInfo": _obj(ext=_S, did=_S, subject=_S, body=_S, meeting=_S),
}


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/auth": {
            "post": _op("Sign in (OAuth2 password grant with client Basic auth, or an Azure AD id_token)",
                        _ref("Token"), errors=("400", "403", "502", "504"), body="PasswordGrant", auth="client"),
            "get": _op("The signed-in MX user", _ref("UserInfo")),
            "delete": _op("Sign out: close the MX session, forget the user and their device tokens",
                          _obj(userLogout=_S), errors=("403", "404")),
        },
        "/auth/logout": {"delete": _op("Same as DELETE /auth (the README's spelling)", _obj(userLogout=_S),
                                       errors=("403", "404"))},
        "/contacts": {"get": _op("MX directory, sorted by extension", _list("contacts", "Contact"))},
        "/services": {"get": _op("MX services", _list("services", "Service"))},
        "/calls": {
            "get": _op("Call log, sorted by record_id", _list("callLog", "CallLogEntry"), errors=("400", "504"),
                       params=[{"name": "timestamp", "in": "query", "required": False, "schema": _S,
                                "description": "Unix seconds or RFC 3339; only calls after it"}]),
            "patch": _op("Set the call mode", _obj(callMode=_ref("CallMode")), errors=("400", "504"), body="CallMode"),
            "post": _op("Server call (optionally assigning a device first)",
                        _obj(makeCall=_obj(callId=_I, deviceId=_S, calledDevice=_S)), errors=("400", "504"),
                        body="MakeCall"),
        },
        "/calls/{id}": {
            "get": _op("Stored Delivered/Established info of a current call", _obj(callInfo=_ref("CallEvent")),
                       errors=("404",), params=[_CALL_ID]),
            "put": _op("Answer the call on a (SIP) device", _obj(sipAnswer=_obj(callId=_I, device=_S, timeout=_I,
                                                                                  assign=_B)),
                       errors=("400", "404", "504"), body="SipAnswer", params=[_CALL_ID]),
            "post": _op("Single-step transfer", _obj(transfer=_obj(callId=_I, device=_S, to=_S)),
                        errors=("400", "404", "504"), body="Transfer", params=[_CALL_ID]),
            "delete": _op("Hang up", _obj(connectionCleared=_ref("CallEvent")), errors=("400", "404", "504"),
                          params=[_CALL_ID, _DEVICE]),
            "patch": _op("Assign a named device to the session (the path segment is the device name)",
                         status="204", errors=("400", "504"),
                         params=[{"name": "id", "in": "path", "required": True, "schema": _S}]),
        },
        "/calls/{id}/hold": {"put": _op("Hold", _obj(held=_ref("CallEvent")), errors=("400", "404", "504"),
                                        params=[_CALL_ID, _DEVICE])},
        "/calls/{id}/unhold": {"put": _op("Retrieve", _obj(retrieved=_ref("CallEvent")),
                                          errors=("400", "404", "504"), params=[_CALL_ID, _DEVICE])},
        "/calls/{id}/record": {"post": _op("Start recording", status="204", errors=("400", "404", "504"),
                                           body="Recording", params=[_CALL_ID])},
        "/calls/{id}/record/stop": {"post": _op("Stop recording", status="204", errors=("400", "404", "504"),
                                                body="Recording", params=[_CALL_ID])},
        "/calls/{id}/conference": {"post": _op("Make a conference from calls", status="204",
                                               errors=("400", "404", "504"), body="ConferenceFromCall",
                                               params=[_CALL_ID])},
        "/voicemails": {"get": _op("Voicemails / recordings / faxes, oldest first",
                                   _list("voiceMails", "Voicemail"), errors=("400", "504"), params=[_MEDIA])},
        "/voicemails/{id}": {
            "get": {**_op("Download the message audio (streamed)", errors=("404", "504"), params=[_ID, _MEDIA]),
                    "responses": {"200": {"description": "the file",
                                          "content": {"audio/wave": {}, "application/octet-stream": {}}},
                                  "401": _ERR, "404": _ERR, "503": _ERR, "504": _ERR}},
            "delete": _op("Delete", status="204", errors=("404", "504"), params=[_ID, _MEDIA]),
            "patch": _op("Mark read and/or set the note", _obj(vm=_ref("VoicemailUpdate")),
                         errors=("400", "404", "504"), body="VoicemailUpdate", params=[_ID, _MEDIA]),
        },
        "/conferences/info": {"get": _op("Conference server settings",
                                         _obj(conferences=_ref("ConferenceServerInfo")), errors=("504",))},
        "/conferences": {
            "get": _op("Conferences", _list("conferences", "Conference"), errors=("504",)),
            "post": _op("Create a conference", _obj(conference=_ref("Conference")), errors=("400", "504"),
                        body="Conference"),
        },
        "/conferences/{id}": {
            "put": _op("Update a conference", _obj(conference=_ref("Conference")), errors=("400", "504"),
                       body="Conference", params=[_ID]),
            "post": _op("Join a conference (id = call id)", status="204", errors=("400", "504"),
                        body="ConferenceJoin", params=[_ID]),
            "delete": _op("Delete a conference", status="204", errors=("404", "504"), params=[_ID]),
        },
        "/tokens/{kind}/{topic}/{token}": {
            "put": _op("Register a device push token", status="204", errors=("400", "404"), params=_TOKEN_PARAMS),
            "delete": _op("Unregister a device push token", status="204", errors=("400", "404"),
                          params=_TOKEN_PARAMS),
        },
        "/debug/log": {"get": {**_op("The server log, secrets redacted", auth="basic", errors=("403", "404")),
                               "responses": {"200": {"description": "log text", "content": {"text/plain": {}}},
                                             "401": _ERR, "403": _ERR, "404": _ERR}}},
        "/openapi.json": {"get": {"summary": "This document", "security": [],
                                  "responses": {"200": {"description": "OpenAPI 3.1 document"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "mxproxy public API (MX Proxy 2.3 compatible)", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": {"Error": {"description": "error", "content": {"application/json": {"schema": _ref("Error")}}}},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "clientBasic": {"type": "http", "scheme": "basic", "description": "OAuth2 client id and secret"},
                "azureBearer": {"type": "http", "scheme": "bearer", "description": "Azure AD id_token"},
            },
        },
    }
