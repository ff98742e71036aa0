"""``/calls``: call log, call mode, make/answer/transfer/clear/hold/record calls, call info."""

from __future__ import annotations

import calendar
import re
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mxproxy.api.auth import current_session
from mxproxy.api.bodies import Field, parse_int_text, read_fields
from mxproxy.api.errors import ApiError
from mxproxy.api.idempotency import idempotent, idempotently
from mxproxy.api.render import call_log_json, json_response, no_content
from mxproxy.api.rendered import RenderedJSON
from mxproxy.connectors.base import CallLogEntry, CallMode, Event
from mxproxy.eventjson import event_json

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT16_MAX = 65535


def parse_call_id(raw: str) -> int:
    """``/calls/{id}`` ids are signed 64-bit integers; anything else is an unknown call (404)."""
    value = parse_int_text(raw)
    if value is None or not INT64_MIN <= value <= INT64_MAX:
        raise ApiError(404, f'bad call id "{raw}": expected a 64-bit integer')
    return value


# RFC 3339 ``date-time`` (what OpenAPI's ``format: date-time`` means): "T"/"Z" in either case,
# optional fraction, "Z" or a numeric offset; no other ISO 8601 spelling.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)


def _rfc3339_seconds(raw: str) -> int | None:
    """Unix seconds of an RFC 3339 date-time (fraction dropped, leap second 60 taken as 59)."""
    match = _RFC3339.fullmatch(raw)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    sign, off_h, off_m = match.group(7), match.group(8), match.group(9)
    try:
        date(year, month, day)
    except ValueError:
        return None
    if hour > 23 or minute > 59 or second > 60:
        return None
    offset = 0
    if sign:
        if int(off_h) > 23 or int(off_m) > 59:
            return None
        offset = (int(off_h) * 3600 + int(off_m) * 60) * (1 if sign == "+" else -1)
    return calendar.timegm((year, month, day, hour, minute, min(second, 59), 0, 0, 0)) - offset


def parse_timestamp(raw: str | None) -> int | None:
    """Integer Unix seconds or RFC 3339; absent or negative means the whole log."""
    if raw is None or raw == "":
        return None
    value = parse_int_text(raw)
    if value is None:
        value = _rfc3339_seconds(raw)
        if value is None:
            raise ApiError(400, "bad timestamp format")  # the original's text
    # far future: nothing is newer (the MX takes 64-bit times)
    return None if value < 0 else min(value, INT64_MAX)


def _call_event(event: Event) -> dict[str, Any]:
    return event_json(event, with_meta=True) or {}


def _check_assigned(requested: str, got: str) -> None:
    if got != requested:
        raise ApiError(400, f'bad device name "{got}"')


# --- /calls -------------------------------------------------------------------------------------


def render_call_log(entries: list[CallLogEntry]) -> RenderedJSON:
    return RenderedJSON({"callLog": call_log_json(entries)})


async def call_log(request: Request) -> Response:
    """Rendered once per cached log (per user and ``timestamp``), then served as bytes."""
    session = await current_session(request)
    # no query string (the usual request): nothing to parse
    since = parse_timestamp(request.query_params.get("timestamp")) if request.scope["query_string"] else None
    return (await session.call_log_as(since, render_call_log)).response(request)


async def set_call_mode(request: Request) -> Response:
    session = await current_session(request)
    body = await read_fields(
        request, [Field("remote", "bool"), Field("device"), Field("ringDelay", "int"), Field("vmDelay", "int")]
    )
    ring_delay = body.get("ringDelay", 1)
    vm_delay = body.get("vmDelay", 30)
    for name, value in (("ringDelay", ring_delay), ("vmDelay", vm_delay)):
        if not 0 <= value <= UINT16_MAX:
            raise ApiError(400, f'bad value for "{name}": must be between 0 and {UINT16_MAX}')
    mode = CallMode(remote=body.get("remote", False), device=body.get("device", ""),
                    ring_delay=ring_delay, vm_delay=vm_delay)
    await session.mx.set_call_mode(mode)
    return json_response(
        {"callMode": {"remote": mode.remote, "device": mode.device, "ringDelay": mode.ring_delay,
                      "vmDelay": mode.vm_delay}}
    )


@idempotent
async def make_call(request: Request) -> Response:
    session = await current_session(request)
    body = await read_fields(request, [Field("from"), Field("to"), Field("device")])
    to = body.get("to", "")
    if not to:
        raise ApiError(400, 'missing "to" number')
    device = body.get("device", "")
    if device:
        _check_assigned(device, await session.mx.assign_device(device))
    result = await session.mx.make_call(body.get("from") or session.info.extension, to)
    return json_response(
        {"makeCall": {"callId": result.call_id, "deviceId": result.device_id, "calledDevice": result.called_device}}
    )


async def calls_route(request: Request) -> Response:
    if request.method == "GET":
        return await call_log(request)
    if request.method == "PATCH":
        return await set_call_mode(request)
    return await make_call(request)


# --- /calls/{id} ----------------------------------------------------------------------------------


async def call_info(request: Request, call_id: int) -> Response:
    session = await current_session(request)
    info = session.calls.get(call_id)
    if info is None:
        raise ApiError(404, "not found")
    return json_response({"callInfo": info})


async def answer_call(request: Request, call_id: int) -> Response:
    body = await read_fields(request, [Field("device"), Field("assign", "bool"), Field("timeout", "int"),
                                       Field("callId", "id")])
    device = body.get("device", "")
    assign = body.get("assign", False)
    timeout = body.get("timeout", 30)
    session = await current_session(request)
    if assign and device:
        _check_assigned(device, await session.mx.assign_device(device))
    await session.mx.answer_call(call_id, device)
    return json_response({"sipAnswer": {"callId": call_id, "device": device, "timeout": timeout, "assign": assign}})


async def transfer_call(request: Request, call_id: int) -> Response:
    body = await read_fields(request, [Field("device"), Field("to"), Field("callId", "id")])
    to = body.get("to", "")
    if not to:
        raise ApiError(400, 'missing "to" number')
    session = await current_session(request)
    device = body.get("device") or session.info.extension
    await session.mx.transfer_call(call_id, device, to)
    session.call_log_changed()
    return json_response({"transfer": {"callId": call_id, "device": device, "to": to}})


def _device(request: Request, default: str) -> str:
    """The leg to act on: ``?device=`` when given (calls on an assigned device), else own ext."""
    return request.query_params.get("device") or default


async def clear_call(request: Request, call_id: int) -> Response:
    session = await current_session(request)
    event = await session.mx.clear_connection(call_id, _device(request, session.info.extension))
    session.call_log_changed()
    return json_response({"connectionCleared": _call_event(event)})


async def assign_device(request: Request, name: str) -> Response:
    if not name:
        raise ApiError(400, "bad device name \"\"")
    session = await current_session(request)
    _check_assigned(name, await session.mx.assign_device(name))
    return no_content()


async def call_route(request: Request) -> Response:
    await current_session(request)  # authenticate before looking at the path or body
    raw = request.path_params["id"]
    if request.method == "PATCH":
        return await assign_device(request, raw)
    call_id = parse_call_id(raw)
    if request.method == "GET":
        return await call_info(request, call_id)
    if request.method == "PUT":
        return await answer_call(request, call_id)
    if request.method == "POST":
        return await idempotently(request, lambda: transfer_call(request, call_id))
    return await clear_call(request, call_id)


# --- /calls/{id}/… ---------------------------------------------------------------------------------


async def hold(request: Request) -> Response:
    session = await current_session(request)
    call_id = parse_call_id(request.path_params["id"])
    event = await session.mx.hold_call(call_id, _device(request, session.info.extension))
    return json_response({"held": _call_event(event)})


async def unhold(request: Request) -> Response:
    session = await current_session(request)
    call_id = parse_call_id(request.path_params["id"])
    event = await session.mx.retrieve_call(call_id, _device(request, session.info.extension))
    return json_response({"retrieved": _call_event(event)})


async def _recording(request: Request, start: bool) -> Response:
    session = await current_session(request)
    call_id = parse_call_id(request.path_params["id"])
    body = await read_fields(request, [Field("deviceID"), Field("groupID")])
    device = body.get("deviceID") or session.info.extension
    group = body.get("groupID", "")
    if start:
        await session.mx.start_recording(call_id, device, group)
    else:
        await session.mx.stop_recording(call_id, device, group)
    return no_content()


async def record_start(request: Request) -> Response:
    return await _recording(request, True)


async def record_stop(request: Request) -> Response:
    return await _recording(request, False)


@idempotent
async def conference_from_call(request: Request) -> Response:
    call_id = parse_call_id(request.path_params["id"])
    body = await read_fields(request, [Field("ownerCallId", "id")])
    owner_call_id = body.get("ownerCallId") or call_id
    session = await current_session(request)
    await session.mx.conference_from_call(call_id, owner_call_id)
    session.call_log_changed()
    return no_content()
