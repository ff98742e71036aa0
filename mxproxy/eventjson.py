"""The MX Proxy 2.3 JSON of MX events (spec §5), byte-compatible in keys, key order and types.

The same object is what the original pushed, what ``GET /calls/{id}`` returns (the stored
Delivered/Established) and, with ``type: ""`` and ``timestamp: 0``, what the call-control routes
return (``connectionCleared``, ``held``, ``retrieved``). Keys marked ``?`` in the spec are left out
when empty or zero, as Go's ``omitempty`` did; every other key is always present.
"""

from __future__ import annotations

from typing import Any, Callable

from mxproxy.connectors.base import (
    Cad,
    ConnectionCleared,
    Delivered,
    Established,
    Event,
    Held,
    MailIncomingReady,
    Originated,
    RecordingState,
    Retrieved,
)

JSONObject = dict[str, Any]

#: The ``type`` value of each event the original pushed, in the spec's order.
EVENT_TYPES: dict[type[Event], str] = {
    Delivered: "Delivered",
    Established: "Established",
    Originated: "Originated",
    ConnectionCleared: "ConnectionCleared",
    Held: "HeldEvent",
    Retrieved: "RetrievedEvent",
    MailIncomingReady: "MailIncoming",
    RecordingState: "RecordingState",
}

PUSHED_TYPES: tuple[str, ...] = tuple(EVENT_TYPES.values())


def event_type(event: Event) -> str | None:
    """The MX Proxy ``type`` of an event, or None for events the original never pushed."""
    return EVENT_TYPES.get(type(event))


def _put_if(out: JSONObject, key: str, value: Any) -> None:
    """Go ``omitempty``: skip "", 0, False, empty lists."""
    if value:
        out[key] = value


def _cads(cads: tuple[Cad, ...]) -> list[JSONObject]:
    items: list[JSONObject] = []
    for cad in cads:
        item: JSONObject = {"name": cad.name, "type": cad.type}
        _put_if(item, "value", cad.value)
        items.append(item)
    return items


def _delivered(e: Delivered, out: JSONObject) -> None:
    out["callId"] = e.call_id
    out["deviceId"] = e.device_id
    out["globalCallId"] = e.global_call_id
    out["callingDevice"] = e.calling_device
    out["calledDevice"] = e.called_device
    out["alertingDevice"] = e.alerting_device
    out["lastRedirectionDevice"] = e.last_redirection_device
    out["localConnectionInfo"] = e.local_connection_info
    out["cause"] = e.cause
    _put_if(out, "callTypeFlags", e.call_type_flags)


def _established(e: Established, out: JSONObject) -> None:
    out["callId"] = e.call_id
    out["deviceId"] = e.device_id
    out["globalCallId"] = e.global_call_id
    out["answeringDevice"] = e.answering_device
    out["answeringDisplayName"] = e.answering_display_name
    out["callingDevice"] = e.calling_device
    out["calledDevice"] = e.called_device
    _put_if(out, "lastRedirectionDevice", e.last_redirection_device)
    out["callingDisplayName"] = e.calling_display_name
    out["cause"] = e.cause
    _put_if(out, "callTypeFlags", e.call_type_flags)
    _put_if(out, "cmdsAllowed", e.cmds_allowed)
    _put_if(out, "cads", _cads(e.cads))


def _originated(e: Originated, out: JSONObject) -> None:
    out["callId"] = e.call_id
    out["deviceId"] = e.device_id
    out["callingDevice"] = e.calling_device
    out["calledDevice"] = e.called_device
    out["cause"] = e.cause
    _put_if(out, "callTypeFlags", e.call_type_flags)
    _put_if(out, "cmdsAllowed", e.cmds_allowed)


def _cleared(e: ConnectionCleared, out: JSONObject) -> None:
    out["callId"] = e.call_id
    out["deviceId"] = e.device_id
    out["releasingDevice"] = e.releasing_device
    out["cause"] = e.cause


def _held(e: Held, out: JSONObject) -> None:
    # The original exports the holding device as "releasingDevice" (spec §5.5); kept for compat.
    out["callId"] = e.call_id
    out["deviceId"] = e.device_id
    out["releasingDevice"] = e.holding_device
    out["cause"] = e.cause
    _put_if(out, "callTypeFlags", e.call_type_flags)
    _put_if(out, "cmdsAllowed", e.cmds_allowed)


def _retrieved(e: Retrieved, out: JSONObject) -> None:
    out["callId"] = e.call_id
    out["deviceId"] = e.device_id
    out["releasingDevice"] = e.retrieving_device
    out["cause"] = e.cause
    _put_if(out, "callTypeFlags", e.call_type_flags)
    _put_if(out, "cmdsAllowed", e.cmds_allowed)


def _mail(e: MailIncomingReady, out: JSONObject) -> None:
    out["from"] = e.sender
    out["fromName"] = e.from_name
    out["callerName"] = e.caller_name
    out["to"] = e.to
    out["ownerId"] = e.owner_id  # a JSON number, as in the original
    out["ownerType"] = e.owner_type
    out["mailId"] = e.mail_id
    out["mediaType"] = e.media_type
    out["gcid"] = e.gcid
    out["received"] = e.received
    out["duration"] = e.duration
    _put_if(out, "note", e.note)


def _recording(e: RecordingState, out: JSONObject) -> None:
    out["callId"] = e.call_id
    out["deviceId"] = e.device_id
    out["available"] = e.available
    out["active"] = e.active


_BODIES: dict[type[Event], Callable[[Any, JSONObject], None]] = {
    Delivered: _delivered,
    Established: _established,
    Originated: _originated,
    ConnectionCleared: _cleared,
    Held: _held,
    Retrieved: _retrieved,
    MailIncomingReady: _mail,
    RecordingState: _recording,
}


def event_json(event: Event, *, with_meta: bool = True) -> JSONObject | None:
    """The MX Proxy JSON of ``event`` as an insertion-ordered dict, or None if the original
    never pushed this kind of event.

    ``with_meta=False`` gives ``type: ""`` and ``timestamp: 0``, as the call-control routes do.
    """
    body = _BODIES.get(type(event))
    if body is None:
        return None
    out: JSONObject = {"type": EVENT_TYPES[type(event)] if with_meta else ""}
    body(event, out)
    out["timestamp"] = int(event.received_at) if with_meta else 0
    return out


def delivered_concerns(event: Delivered, ext: str) -> bool:
    """The original's Delivered filter: only a call ringing *at the user* is stored and pushed
    (not the "delivered to the far end" event of the user's own outgoing call)."""
    return event.called_device == ext or event.alerting_device == ext
