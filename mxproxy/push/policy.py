"""Which MX events become which kind of push, and what the payload is.

Two presets (``[push] preset``):

* ``compat`` (default): exactly the original (spec §7.6): every pushed event type goes out as a
  VoIP push whose payload is the event JSON itself.
* ``modern``: a VoIP push only where iOS 13+ needs one, i.e. the ring (``Delivered``) and the
  cancel of that ring (``ConnectionCleared`` of a call still ringing), a visible ``alert`` for
  ``MailIncoming``, nothing for the chatty rest. Call payloads gain ``callUUID`` (uuid5 of user and
  MX call id, so ring and cancel name the same CallKit call) and ``sentAt`` (ms).

``[push.events]`` overrides single types with ``voip``/``alert``/``none`` on top of either preset.
Both presets keep the original's filters: a ``Delivered`` that does not ring at the user is never
pushed, nor is a mail that is already read.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Mapping

from mxproxy.config import PUSH_CHOICES, PUSH_PRESETS, ConfigError, PushConfig
from mxproxy.connectors.base import (
    ConnectionCleared,
    Delivered,
    Established,
    Event,
    MailIncomingReady,
)
from mxproxy.eventjson import PUSHED_TYPES, delivered_concerns, event_json, event_type

VOIP = "voip"
ALERT = "alert"
NONE = "none"
#: internal choice of the modern preset: VoIP, but only for the cancel of a call still ringing
RING_CANCEL = "voip-if-ringing"

COMPAT: Mapping[str, str] = {t: VOIP for t in PUSHED_TYPES}
MODERN: Mapping[str, str] = {
    **{t: NONE for t in PUSHED_TYPES},
    "Delivered": VOIP,
    "ConnectionCleared": RING_CANCEL,
    "MailIncoming": ALERT,
}
PRESETS: Mapping[str, Mapping[str, str]] = {"compat": COMPAT, "modern": MODERN}

#: Namespace of the CallKit UUIDs (a fixed uuid5 of our name, so every proxy instance agrees).
CALL_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:mxproxy:callkit")

_MAIL_TITLES = {"VoiceMail": "New voicemail", "Recording": "New recording", "Fax": "New fax"}


def call_uuid(login: str, call_id: int) -> str:
    """The CallKit UUID of an MX call as seen by one user: stable across the call's events."""
    return str(uuid.uuid5(CALL_UUID_NAMESPACE, f"{login}\x00{call_id}"))


@dataclass(frozen=True)
class PushMessage:
    """One event's push, the same for every device of the user."""

    event_type: str
    kind: str  # "voip" | "alert"
    payload: dict[str, Any]
    call_uuid: str | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)


class PushPolicy:
    """Decides per event; remembers which calls are ringing per user (bounded) so the modern
    preset can push the cancel of a ring and nothing else."""

    def __init__(
        self,
        preset: str = "compat",
        overrides: Mapping[str, str] | None = None,
        *,
        ring_memory: int = 10_000,
    ) -> None:
        if preset not in PRESETS:
            raise ConfigError(f"push.preset: expected one of {', '.join(PUSH_PRESETS)}, got {preset!r}")
        choices = dict(PRESETS[preset])
        for name, choice in (overrides or {}).items():
            if name not in choices:
                raise ConfigError(f"push.events.{name}: unknown event type (known: {', '.join(PUSHED_TYPES)})")
            if choice not in PUSH_CHOICES:
                raise ConfigError(f"push.events.{name}: expected one of {', '.join(PUSH_CHOICES)}, got {choice!r}")
            choices[name] = choice
        self.preset = preset
        self.choices: Mapping[str, str] = choices
        self.modern_payload = preset == "modern"
        self._ringing: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._ring_memory = ring_memory

    @classmethod
    def from_config(cls, push: PushConfig) -> "PushPolicy":
        return cls(push.preset, push.events)

    def choice(self, type_name: str) -> str:
        """``voip``, ``alert`` or ``none`` for a pushed event type (the ring-cancel rule reads as voip)."""
        choice = self.choices.get(type_name, NONE)
        return VOIP if choice == RING_CANCEL else choice

    def message(self, event: Event, *, login: str, ext: str) -> PushMessage | None:
        """The push for ``event`` of user ``login`` (extension ``ext``), or None for no push."""
        type_name = event_type(event)
        if type_name is None:
            return None
        if isinstance(event, Delivered) and not delivered_concerns(event, ext):
            return None
        if isinstance(event, MailIncomingReady) and event.read:
            return None
        was_ringing = self._track(event, login)
        choice = self.choices.get(type_name, NONE)
        if choice == RING_CANCEL:
            choice = VOIP if was_ringing else NONE
        if choice == NONE:
            return None
        payload = event_json(event)
        assert payload is not None  # every type in PUSHED_TYPES has a JSON body
        uid: str | None = None
        call_id = payload.get("callId")
        if self.modern_payload and isinstance(call_id, int):
            uid = call_uuid(login, call_id)
            payload["callUUID"] = uid
            payload["sentAt"] = int(time.time() * 1000)
        if choice == ALERT:
            payload = {"aps": _alert(event, type_name, was_ringing), **payload}
        return PushMessage(event_type=type_name, kind=choice, payload=payload, call_uuid=uid)

    def _track(self, event: Event, login: str) -> bool:
        """Update the ringing set; returns whether the event's call was ringing before it."""
        call_id = getattr(event, "call_id", None)
        if not isinstance(call_id, int):
            return False
        key = (login, call_id)
        was_ringing = key in self._ringing
        if isinstance(event, Delivered):
            self._ringing[key] = None
            self._ringing.move_to_end(key)
            while len(self._ringing) > self._ring_memory:
                self._ringing.popitem(last=False)
        elif isinstance(event, (Established, ConnectionCleared)):
            self._ringing.pop(key, None)
        return was_ringing


def _alert(event: Event, type_name: str, was_ringing: bool) -> dict[str, Any]:
    """A plain-English visible notification (apps wanting their own wording use VoIP/data pushes)."""
    if isinstance(event, MailIncomingReady):
        who = event.from_name or event.caller_name or event.sender
        title = _MAIL_TITLES.get(event.media_type, "New message")
        body = f"From {who} ({event.sender})" if who and who != event.sender else f"From {event.sender}"
    elif isinstance(event, Delivered):
        title, body = "Incoming call", f"From {event.calling_display_name or event.calling_device}"
    elif isinstance(event, ConnectionCleared):
        title, body = ("Missed call" if was_ringing else "Call ended"), ""
    else:
        title, body = type_name, ""
    alert: dict[str, Any] = {"title": title}
    if body:
        alert["body"] = body
    return {"alert": alert, "sound": "default"}
