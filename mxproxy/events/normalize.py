"""Raw connector events of one user → normalised events, one per real transition.

The MX reports a call as a series of CSTA events whose order and repetition depend on the
firmware (a repeated ``Delivered``, a call-control event sent both as response and event, issue
8). A small state machine per call decides what is a transition: ``ringing``/``dialing`` →
``answered`` → ``held`` ⇄ ``resumed`` → ``transferred`` → ``ended``. An event that does not move
the state (a duplicate, the far end's ``Delivered`` of our own outgoing call, the ``Diverted``
step of a server call) produces nothing. The state lives per user, above the MX session, so a
reconnect that reports a ringing call again does not ring twice.

Which events are the user's own follows the rules the rest of the proxy uses
(``mxproxy.eventjson.delivered_concerns``; the user's extension from the login).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from mxproxy.connectors.base import (
    AddressBookChanged,
    Contact,
    ConnectionCleared,
    Delivered,
    Diverted,
    Established,
    Event as MXEvent,
    Failed,
    Held,
    MailIncomingReady,
    Originated,
    PresenceChanged,
    Retrieved,
    Transferred,
)
from mxproxy.eventjson import delivered_concerns
from mxproxy.events.model import rfc3339
from mxproxy.push.policy import call_uuid

#: (type, data, time, key) of one normalised event, before the bus numbers it. ``key`` names the
#: real transition the same way on any instance that saw it ("": the bus makes one from the id).
Raw = tuple[str, dict[str, Any], float, str]

INCOMING = "incoming"
OUTGOING = "outgoing"

#: Calls tracked per user at most (a softphone has a handful; this only bounds a leak).
MAX_CALLS = 100
#: A call with no event for this long is forgotten (its end was never reported).
CALL_TTL = 2 * 3600.0
#: Ended call ids remembered (at most this many, for this many seconds), so a late duplicate of
#: their last events creates nothing while a call id the MX uses again later is a new call.
ENDED_MEMORY = 256
ENDED_WINDOW = 60.0
#: Mail ids and presence entries (the user's own and the users the MX reports to them) remembered
#: per user, to tell a repeat from a change; beyond, the oldest is forgotten (its next repeat is
#: one extra event). Per user, so this bounds memory at thousands of users.
MAIL_MEMORY = 500
PRESENCE_MEMORY = 200
#: The same address-book change again within this many seconds is a duplicate.
CONTACT_REPEAT = 5.0
#: ConnectionCleared causes that mean the call was handed on (not hung up).
TRANSFER_CAUSES = frozenset({"singleStepTransfer", "transfer", "transferred"})


@dataclass(slots=True)
class CallState:
    call_id: int
    uuid: str
    direction: str
    state: str  # ringing | dialing | active | held
    local_number: str
    remote_number: str
    local_name: str = ""
    remote_name: str = ""
    global_call_id: str = ""
    started: float = 0.0
    answered: float | None = None
    started_text: str = ""  # rfc3339 of ``started``/``answered``, formatted once
    answered_text: str | None = None
    transferred: bool = False
    seen: float = 0.0  # monotonic time of the last event
    counts: dict[str, int] = field(default_factory=dict)  # events of each type so far

    def answer(self, at: float) -> None:
        self.answered = at
        self.answered_text = rfc3339(at)

    def raw(self, kind: str, data: dict[str, Any], at: float) -> Raw:
        """One event of this call; its key is the type, the call's UUID, the MX's global call id
        (a call id the MX uses again later is another call) and the ordinal of the type within
        the call (the second hold is ``call.held:<uuid>:<global id>:2``)."""
        n = self.counts[kind] = self.counts.get(kind, 0) + 1
        return (kind, data, at, f"{kind}:{self.uuid}:{self.global_call_id}:{n}")

    def data(self) -> dict[str, Any]:
        return {
            "callId": self.call_id,
            "callUUID": self.uuid,
            "globalCallId": self.global_call_id,
            "direction": self.direction,
            "localNumber": self.local_number,
            "localName": self.local_name,
            "remoteNumber": self.remote_number,
            "remoteName": self.remote_name,
            "startTime": self.started_text,
            "answerTime": self.answered_text,
        }


def _side(device: str, ext: str) -> str:
    return "local" if device and device == ext else "remote"


def _contact(contact: Contact | None) -> dict[str, Any] | None:
    if contact is None:
        return None
    return {"jid": contact.jid, "ext": contact.ext, "firstName": contact.first_name, "lastName": contact.last_name,
            "email": contact.email, "cellPhone": contact.cell_phone, "homePhone": contact.home_phone,
            "did": contact.did}


@dataclass
class UserNormalizer:
    """The normaliser state of one user: their calls, mails and presence."""

    login: str
    clock: Callable[[], float] = time.monotonic
    calls: OrderedDict[int, CallState] = field(default_factory=OrderedDict)
    ended: OrderedDict[int, float] = field(default_factory=OrderedDict)  # call id -> when it ended
    mails: OrderedDict[tuple[str, str], bool] = field(default_factory=OrderedDict)  # (media, id) -> read
    presence: OrderedDict[int, tuple[str, str, str]] = field(default_factory=OrderedDict)
    last_contact: tuple[Any, float] | None = None

    # -- entry point ----------------------------------------------------------------------------
    def feed(self, event: MXEvent, ext: str, user_id: int = 0) -> list[Raw]:
        """The normalised events ``event`` causes for this user (usually none or one)."""
        handler = _HANDLERS.get(type(event))
        if handler is None:
            return []
        return handler(self, event, ext, user_id)

    # -- calls ----------------------------------------------------------------------------------
    def _call(self, call_id: int) -> CallState | None:
        call = self.calls.get(call_id)
        now = self.clock()
        if call is not None:
            if now - call.seen > CALL_TTL:
                del self.calls[call_id]
                return None
            call.seen = now
            self.calls.move_to_end(call_id)  # least recently seen first, for _new_call's bound
        return call

    def _new_call(self, event: Any, direction: str, state: str, local: str, remote: str) -> CallState:
        now = self.clock()
        while self.calls:  # forget calls whose end never came
            oldest = next(iter(self.calls.values()))
            if now - oldest.seen <= CALL_TTL and len(self.calls) < MAX_CALLS:
                break
            self.calls.popitem(last=False)
        call = CallState(call_id=event.call_id, uuid=call_uuid(self.login, event.call_id), direction=direction,
                         state=state, local_number=local, remote_number=remote,
                         global_call_id=event.global_call_id, started=event.received_at,
                         started_text=rfc3339(event.received_at), seen=now)
        self.calls[event.call_id] = call
        return call

    def _known_ended(self, call_id: int) -> bool:
        ended = self.ended.get(call_id)
        return ended is not None and self.clock() - ended < ENDED_WINDOW

    def _end(self, call: CallState, event: Any, reason: str, ext: str, **extra: Any) -> list[Raw]:
        self.calls.pop(call.call_id, None)
        self.ended.pop(call.call_id, None)
        self.ended[call.call_id] = self.clock()
        while len(self.ended) > ENDED_MEMORY:
            self.ended.popitem(last=False)
        end = event.received_at
        data = call.data()
        data.update(
            endTime=rfc3339(end),
            duration=round(max(0.0, end - call.answered), 3) if call.answered is not None else 0,
            missed=call.direction == INCOMING and call.answered is None and reason != "answered-elsewhere",
            reason=reason,
            cause=event.cause,
            **extra,
        )
        return [call.raw("call.ended", data, end)]

    def _delivered(self, event: Delivered, ext: str, user_id: int) -> list[Raw]:
        call = self._call(event.call_id)
        if delivered_concerns(event, ext):  # ringing at the user
            if call is None:
                if self._known_ended(event.call_id):
                    return []
                call = self._new_call(event, INCOMING, "ringing", ext, event.calling_device)
                call.remote_name = event.calling_display_name
                call.local_name = event.alerting_display_name if event.alerting_device == ext else ""
                return [call.raw("call.ringing", call.data(), event.received_at)]
            if call.direction == INCOMING and not call.remote_name:
                call.remote_name = event.calling_display_name
            return []
        # ringing elsewhere: the far end of the user's own outgoing call
        far = event.alerting_device or event.called_device
        if call is None:
            if event.calling_device != ext or self._known_ended(event.call_id):
                return []
            call = self._new_call(event, OUTGOING, "dialing", ext, far)
            call.remote_name = event.alerting_display_name
            return [call.raw("call.dialing", call.data(), event.received_at)]
        if call.direction == OUTGOING and call.state == "dialing":
            call.remote_number = far or call.remote_number
            call.remote_name = event.alerting_display_name or call.remote_name
        return []

    def _originated(self, event: Originated, ext: str, user_id: int) -> list[Raw]:
        if self._call(event.call_id) is not None or self._known_ended(event.call_id):
            return []
        call = self._new_call(event, OUTGOING, "dialing", ext, event.called_device)
        return [call.raw("call.dialing", call.data(), event.received_at)]

    def _established(self, event: Established, ext: str, user_id: int) -> list[Raw]:
        call = self._call(event.call_id)
        if call is None:
            if self._known_ended(event.call_id):
                return []
            # a call we never saw start (a joined consultative transfer, a session that came
            # back mid-call): it is answered now
            if event.calling_device == ext:
                call = self._new_call(event, OUTGOING, "active", ext, event.answering_device or event.called_device)
                call.remote_name = event.answering_display_name
            else:
                call = self._new_call(event, INCOMING, "active", ext, event.calling_device)
                call.remote_name = event.calling_display_name
                call.local_name = event.answering_display_name if event.answering_device == ext else ""
            call.answer(event.received_at)
            return [call.raw("call.answered", call.data(), event.received_at)]
        if call.state not in ("ringing", "dialing"):
            return []  # already answered: a repeat
        if call.direction == INCOMING and event.answering_device and event.answering_device != ext:
            # picked up by another device (a colleague, a hunt group): over for this user
            return self._end(call, event, "answered-elsewhere", ext, answeredBy=event.answering_device)
        call.state = "active"
        call.answer(event.received_at)
        if call.direction == OUTGOING:
            call.remote_name = event.answering_display_name or call.remote_name
        else:
            call.local_name = event.answering_display_name or call.local_name
            call.remote_name = call.remote_name or event.calling_display_name
        return [call.raw("call.answered", call.data(), event.received_at)]

    def _held(self, event: Held, ext: str, user_id: int) -> list[Raw]:
        return self._hold_switch(event.call_id, "active", "held", "call.held", _side(event.holding_device, ext),
                                 event.received_at)

    def _retrieved(self, event: Retrieved, ext: str, user_id: int) -> list[Raw]:
        return self._hold_switch(event.call_id, "held", "active", "call.resumed",
                                 _side(event.retrieving_device, ext), event.received_at)

    def _hold_switch(self, call_id: int, before: str, after: str, event_type: str, by: str,
                     at: float) -> list[Raw]:
        """Held and resumed: one event per real switch (the MX repeats them), with who did it."""
        call = self._call(call_id)
        if call is None or call.state != before:
            return []
        call.state = after
        data = call.data()
        data["by"] = by
        return [call.raw(event_type, data, at)]

    def _transferred(self, event: Transferred, ext: str, user_id: int) -> list[Raw]:
        call = self._call(event.call_id)
        if call is None or call.transferred:
            return []
        call.transferred = True
        data = call.data()
        data.update(by=_side(event.transferring_device, ext), transferredTo=event.transferred_to_device)
        return [call.raw("call.transferred", data, event.received_at)]

    def _cleared(self, event: ConnectionCleared, ext: str, user_id: int) -> list[Raw]:
        call = self._call(event.call_id)
        if call is None:
            return []
        out: list[Raw] = []
        if event.cause in TRANSFER_CAUSES and not call.transferred:  # no Transferred came first
            call.transferred = True
            data = call.data()
            data.update(by=_side(event.releasing_device, ext), transferredTo="")
            out.append(call.raw("call.transferred", data, event.received_at))
        reason = "transferred" if call.transferred else "hangup"
        out += self._end(call, event, reason, ext, endedBy=_side(event.releasing_device, ext))
        return out

    def _diverted(self, event: Diverted, ext: str, user_id: int) -> list[Raw]:
        call = self._call(event.call_id)
        if call is None or call.direction != INCOMING or call.state != "ringing":
            return []  # the Diverted step of a server call, or not ringing here
        if event.diverting_device not in (ext, "") and event.device_id != ext:
            return []
        return self._end(call, event, "diverted", ext, divertedTo=event.new_destination)

    def _failed(self, event: Failed, ext: str, user_id: int) -> list[Raw]:
        call = self._call(event.call_id)
        if call is None:
            return []
        return self._end(call, event, "failed", ext)

    # -- mail, presence, address book ----------------------------------------------------------
    def _mail(self, event: MailIncomingReady, ext: str, user_id: int) -> list[Raw]:
        key = (event.media_type, event.mail_id)
        known = self.mails.get(key)
        if event.read:
            if known is True:
                return []
            self._remember_mail(key, True)
            return [self._mail_raw("voicemail.read", _mail_read(event.mail_id, event.media_type), event.received_at)]
        if known is not None:
            return []  # a repeat of a mail already announced
        self._remember_mail(key, False)
        data = {
            "mailId": event.mail_id, "mediaType": event.media_type, "from": event.sender, "fromName": event.from_name,
            "callerName": event.caller_name, "to": event.to, "gcid": event.gcid,
            "received": rfc3339(event.received) if event.received else None, "duration": event.duration,
            "urgent": event.urgent, "private": event.private, "note": event.note,
        }
        return [self._mail_raw("voicemail.new", data, event.received_at)]

    def mail_read(self, mail_id: str, media_type: str, at: float) -> list[Raw]:
        """The user marked a mail read through the proxy (the MX sends no event for that)."""
        key = (media_type, mail_id)
        if self.mails.get(key) is True:
            return []
        self._remember_mail(key, True)
        return [self._mail_raw("voicemail.read", _mail_read(mail_id, media_type), at)]

    def _mail_raw(self, kind: str, data: dict[str, Any], at: float) -> Raw:
        return (kind, data, at, f"{kind}:{self.login}:{data['mediaType']}:{data['mailId']}")

    def _remember_mail(self, key: tuple[str, str], read: bool) -> None:
        self.mails[key] = read
        self.mails.move_to_end(key)
        while len(self.mails) > MAIL_MEMORY:
            self.mails.popitem(last=False)

    def _presence(self, event: PresenceChanged, ext: str, user_id: int) -> list[Raw]:
        own = event.user_id == 0 or (user_id != 0 and event.user_id == user_id)
        jid = user_id if own and event.user_id == 0 else event.user_id
        state = (event.status, event.mx_status, event.note)
        if self.presence.get(jid) == state:
            return []
        self.presence[jid] = state
        self.presence.move_to_end(jid)
        while len(self.presence) > PRESENCE_MEMORY:
            self.presence.popitem(last=False)
        data = {"userId": jid, "self": own, "status": event.status,
                "mxStatus": [f for f in event.mx_status.split("|") if f], "note": event.note}
        return [("presence.changed", data, event.received_at, "")]

    def _address_book(self, event: AddressBookChanged, ext: str, user_id: int) -> list[Raw]:
        now = self.clock()
        identity = (event.kind, event.user_id, event.contact)
        last = self.last_contact
        if last is not None and last[0] == identity and now - last[1] < CONTACT_REPEAT:
            return []
        self.last_contact = (identity, now)
        data = {"change": event.kind, "userId": event.user_id, "contact": _contact(event.contact)}
        return [("contacts.changed", data, event.received_at, "")]


def _mail_read(mail_id: str, media_type: str) -> dict[str, Any]:
    return {"mailId": mail_id, "mediaType": media_type}


_HANDLERS: dict[type, Callable[[UserNormalizer, Any, str, int], list[Raw]]] = {
    Delivered: UserNormalizer._delivered,
    Originated: UserNormalizer._originated,
    Established: UserNormalizer._established,
    Held: UserNormalizer._held,
    Retrieved: UserNormalizer._retrieved,
    Transferred: UserNormalizer._transferred,
    ConnectionCleared: UserNormalizer._cleared,
    Diverted: UserNormalizer._diverted,
    Failed: UserNormalizer._failed,
    MailIncomingReady: UserNormalizer._mail,
    PresenceChanged: UserNormalizer._presence,
    AddressBookChanged: UserNormalizer._address_book,
}

#: The connector event classes that can produce a normalised event (the bus ignores the rest cheaply).
HANDLED: frozenset[type] = frozenset(_HANDLERS)
