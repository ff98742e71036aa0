"""The MX Proxy 2.3 JSON of MX events (spec §5), byte-compatible in keys, key order and types.

The same object is what the original pushed, what ``GET /calls/{id}`` returns (the stored
Delivered/Established) and, with ``type: ""`` and ``timestamp: 0``, what the call-control routes
return (``connectionCleared``, ``held``, ``retrieved``). Keys marked ``?`` in the spec are left out
when empty or zero, as Go's ``omitempty`` did; every other key is always present.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

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


class _Key(NamedTuple):
    """One JSON key of an event: where its value comes from and whether Go's ``omitempty``
    dropped it when empty ("", 0, False, empty list)."""

    name: str
    attr: str
    omitempty: bool = False
    convert: Callable[[Any], Any] | None = None


def _cads(cads: tuple[Cad, ...]) -> list[JSONObject]:
    return [_object(cad, _CAD_KEYS) for cad in cads]


def _object(source: Any, keys: tuple[_Key, ...], out: JSONObject | None = None) -> JSONObject:
    """``keys`` of ``source`` in order, into ``out`` (a new dict when None)."""
    out = {} if out is None else out
    for key in keys:
        value = getattr(source, key.attr)
        if key.convert is not None:
            value = key.convert(value)
        if value or not key.omitempty:
            out[key.name] = value
    return out


_CAD_KEYS = (_Key("name", "name"), _Key("type", "type"), _Key("value", "value", omitempty=True))

_CALL = (_Key("callId", "call_id"), _Key("deviceId", "device_id"))
_CAUSE = (_Key("cause", "cause"),)
_FLAGS = (_Key("callTypeFlags", "call_type_flags", omitempty=True),)
_FLAGS_CMDS = (*_FLAGS, _Key("cmdsAllowed", "cmds_allowed", omitempty=True))

#: The body keys of each pushed event, in the original's order (spec §5).
_KEYS: dict[type[Event], tuple[_Key, ...]] = {
    Delivered: (
        *_CALL,
        _Key("globalCallId", "global_call_id"),
        _Key("callingDevice", "calling_device"),
        _Key("calledDevice", "called_device"),
        _Key("alertingDevice", "alerting_device"),
        _Key("lastRedirectionDevice", "last_redirection_device"),
        _Key("localConnectionInfo", "local_connection_info"),
        *_CAUSE,
        *_FLAGS,
    ),
    Established: (
        *_CALL,
        _Key("globalCallId", "global_call_id"),
        _Key("answeringDevice", "answering_device"),
        _Key("answeringDisplayName", "answering_display_name"),
        _Key("callingDevice", "calling_device"),
        _Key("calledDevice", "called_device"),
        _Key("lastRedirectionDevice", "last_redirection_device", omitempty=True),
        _Key("callingDisplayName", "calling_display_name"),
        *_CAUSE,
        *_FLAGS_CMDS,
        _Key("cads", "cads", omitempty=True, convert=_cads),
    ),
    Originated: (
        *_CALL, _Key("callingDevice", "calling_device"), _Key("calledDevice", "called_device"), *_CAUSE, *_FLAGS_CMDS
    ),
    ConnectionCleared: (*_CALL, _Key("releasingDevice", "releasing_device"), *_CAUSE),
    # The original exports the holding/retrieving device as "releasingDevice" (spec §5.5); kept for compat.
    Held: (*_CALL, _Key("releasingDevice", "holding_device"), *_CAUSE, *_FLAGS_CMDS),
    Retrieved: (*_CALL, _Key("releasingDevice", "retrieving_device"), *_CAUSE, *_FLAGS_CMDS),
    MailIncomingReady: (
        _Key("from", "sender"),
        _Key("fromName", "from_name"),
        _Key("callerName", "caller_name"),
        _Key("to", "to"),
        _Key("ownerId", "owner_id"),  # a JSON number, as in the original
        _Key("ownerType", "owner_type"),
        _Key("mailId", "mail_id"),
        _Key("mediaType", "media_type"),
        _Key("gcid", "gcid"),
        _Key("received", "received"),
        _Key("duration", "duration"),
        _Key("note", "note", omitempty=True),
    ),
    RecordingState: (*_CALL, _Key("available", "available"), _Key("active", "active")),
}


def event_json(event: Event, *, with_meta: bool = True) -> JSONObject | None:
    """The MX Proxy JSON of ``event`` as an insertion-ordered dict, or None if the original
    never pushed this kind of event.

    ``with_meta=False`` gives ``type: ""`` and ``timestamp: 0``, as the call-control routes do.
    """
    keys = _KEYS.get(type(event))
    if keys is None:
        return None
    out = _object(event, keys, {"type": EVENT_TYPES[type(event)] if with_meta else ""})
    out["timestamp"] = int(event.received_at) if with_meta else 0
    return out


def delivered_concerns(event: Delivered, ext: str) -> bool:
    """The original's Delivered filter: only a call ringing *at the user* is stored and pushed
    (not the "delivered to the far end" event of the user's own outgoing call)."""
    return event.called_device == ext or event.alerting_device == ext
