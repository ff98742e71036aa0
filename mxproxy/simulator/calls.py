"""The call model: who is in which call, and the event sequences of spec §5.12.

A call has two parties (a calling and a called device; either may be an MX extension or an
outside number) and an *owner* extension (the MX user on whose behalf a server call was made, or
the called user of an inbound call). Every operation updates the state, then asks the emitter to
deliver events to every monitor of every involved device; the emitter delivers them later, so a
command's direct response always goes out first.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, Sequence

from mxproxy.simulator import messages as msg

__all__ = ["Party", "Call", "CallModel", "CallError", "Emitter"]

Builder = Callable[[int], str]  # monitorCrossRefID -> XML
#: Called when a call (or one device's leg of it) ends: (call, devices that left, or None = every party).
EndHook = Callable[["Call", "Sequence[str] | None"], None]


class Emitter(Protocol):
    def __call__(self, devices: Iterable[str], build: Builder) -> None: ...


class CallError(Exception):
    """An operation the call state does not allow; carries the CSTAErrorCode child and text."""

    def __init__(self, error: tuple[str, str], message: str) -> None:
        super().__init__(message)
        self.category, self.value = error


@dataclass
class Party:
    device: str
    name: str
    state: str  # initiated | alerting | connected | held


@dataclass
class Call:
    call_id: int
    global_id: str
    gcid: str
    first_call_id: str
    calling: Party
    called: Party
    owner: str
    direction: str  # incoming | outgoing (seen from the owner)
    last_redirection: str = ""
    recording: bool = False
    park_id: int = 0
    original_called: str = ""  # the number first dialled (before any deflection)
    started_at: float = field(default_factory=time.time)
    answered_at: float = 0.0  # 0 = never answered

    @property
    def parties(self) -> tuple[Party, Party]:
        return (self.calling, self.called)

    def devices(self) -> list[str]:
        out = [self.calling.device, self.called.device]
        if self.owner and self.owner not in out:
            out.append(self.owner)
        return out

    def party(self, device: str) -> Party | None:
        """The party at ``device``; the owner extension stands for its side of a server call."""
        for p in self.parties:
            if p.device == device:
                return p
        if device and device == self.owner:
            return self.calling if self.direction == "outgoing" else self.called
        return None

    def other(self, party: Party) -> Party:
        return self.called if party is self.calling else self.calling

    def remote(self) -> Party:
        """The far end seen from the owner (the party a control-API hang-up defaults to)."""
        return self.calling if self.direction == "incoming" else self.called

    def as_dict(self) -> dict[str, object]:
        return {
            "callId": self.call_id, "globalCallId": self.global_id, "gcid": self.gcid, "owner": self.owner,
            "direction": self.direction, "recording": self.recording,
            "calling": {"device": self.calling.device, "name": self.calling.name, "state": self.calling.state},
            "called": {"device": self.called.device, "name": self.called.name, "state": self.called.state},
        }


@dataclass
class CallModel:
    sn: str
    emit: Emitter
    name_of: Callable[[str], str]  # device -> display name ("" when unknown)
    calls: dict[int, Call] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _park_ids: itertools.count = field(default_factory=lambda: itertools.count(701))
    on_end: EndHook | None = None  # the simulator writes call-log records here

    def _ended(self, call: Call, devices: Sequence[str] | None = None) -> None:
        if self.on_end is not None:
            self.on_end(call, devices)

    # -- helpers ------------------------------------------------------------------------------

    def get(self, call_id: int) -> Call:
        call = self.calls.get(call_id)
        if call is None:
            raise CallError(msg.INVALID_CALL, f"no call {call_id}")
        return call

    def _party(self, call: Call, device: str) -> Party:
        party = call.party(device)
        if party is None:
            raise CallError(msg.INVALID_DEVICE, f"device {device!r} is not in call {call.call_id}")
        return party

    def _new(self, calling: Party, called: Party, owner: str, direction: str) -> Call:
        call_id = next(self._ids)
        call = Call(
            call_id=call_id, global_id=str(2809269720623105000 + call_id), gcid=f"{self.sn}-00-0000D-{call_id:03X}",
            first_call_id=f"{self.sn}-B5-{call_id:05X}-50E", calling=calling, called=called, owner=owner,
            direction=direction, original_called=called.device,
        )
        self.calls[call_id] = call
        return call

    def _display(self, device: str, given: str = "") -> str:
        return given or self.name_of(device) or device

    def _delivered(self, call: Call, devices: Iterable[str]) -> None:
        c = call
        self.emit(devices, lambda x: msg.delivered(
            x, c.call_id, c.global_id, c.first_call_id, calling=c.calling.device, calling_name=c.calling.name,
            called=c.called.device, alerting=c.called.device, alerting_name=c.called.name,
            last_redirection=c.last_redirection))

    # -- flows --------------------------------------------------------------------------------

    def incoming(self, to_ext: str, from_number: str, from_name: str = "") -> Call:
        """An inbound call rings ``to_ext``: Delivered to both parties' monitors."""
        call = self._new(Party(from_number, self._display(from_number, from_name), "connected"),
                         Party(to_ext, self._display(to_ext), "alerting"), owner=to_ext, direction="incoming")
        if self.name_of(from_number):  # an internal caller's own monitors see the origination
            c = call
            self.emit([from_number], lambda x: msg.originated(x, c.call_id, c.global_id, calling=c.calling.device,
                                                                called=c.called.device))
        self._delivered(call, call.devices())
        return call

    def make_call(self, owner: str, calling: str, called: str) -> Call:
        """Server call: Originated → Diverted → Delivered (spec §4.7, observed by [FLEX])."""
        call = self._new(Party(calling, self._display(calling), "connected"),
                         Party(called, self._display(called), "alerting"), owner=owner, direction="outgoing")
        c = call
        originator = [d for d in (owner, calling) if d]
        self.emit(originator, lambda x: msg.originated(x, c.call_id, c.global_id, calling=calling, called=called))
        self.emit(originator, lambda x: msg.diverted(x, c.call_id, c.global_id, diverting=calling, new_destination=called))
        self._delivered(call, call.devices())
        return call

    def answer(self, call_id: int, device: str | None = None) -> Call:
        """The ringing party (at ``device``, default the called party) answers: Established."""
        call = self.get(call_id)
        party = call.called if device is None else self._party(call, device)
        if party is not call.called or party.state != "alerting":
            raise CallError(msg.INVALID_CONNECTION_STATE, f"call {call_id} is not ringing at {party.device}")
        party.state = "connected"
        call.answered_at = time.time()
        c = call
        self.emit(call.devices(), lambda x: msg.established(
            x, c.call_id, c.global_id, c.first_call_id, answering=c.called.device, answering_name=c.called.name,
            calling=c.calling.device, calling_name=c.calling.name, called=c.called.device,
            last_redirection=c.last_redirection))
        return call

    def clear(self, call_id: int, device: str | None = None, cause: str = "normal") -> Call:
        """``device`` (default: the far end) hangs up; the two-party call is over for everyone."""
        call = self.get(call_id)
        party = call.remote() if device is None else self._party(call, device)
        releasing = party.device
        del self.calls[call_id]
        self._ended(call)
        c = call
        self.emit(call.devices(), lambda x: msg.connection_cleared(x, c.call_id, c.global_id, dropped=releasing,
                                                                    releasing=releasing, cause=cause))
        return call

    def hold(self, call_id: int, device: str) -> Call:
        return self._set_state(
            call_id, device, "held", lambda x, c: msg.held(x, c.call_id, c.global_id, holding=device)
        )

    def retrieve(self, call_id: int, device: str) -> Call:
        return self._set_state(
            call_id, device, "connected", lambda x, c: msg.retrieved(x, c.call_id, c.global_id, retrieving=device)
        )

    def _set_state(self, call_id: int, device: str, state: str, event: Callable[[int, Call], str]) -> Call:
        """``device``'s connection of the call goes to ``state``; every party hears ``event``."""
        call = self.get(call_id)
        self._party(call, device).state = state
        self.emit(call.devices(), lambda x: event(x, call))
        return call

    def deflect(self, call_id: int, device: str, new_destination: str) -> Call:
        """Redirect a ringing call: Diverted to the old parties, Delivered at the new destination."""
        call = self.get(call_id)
        party = self._party(call, device)
        if party is not call.called or party.state != "alerting":
            raise CallError(msg.INVALID_CONNECTION_STATE, f"call {call_id} is not ringing at {device}")
        c = call
        self._ended(call, [device])  # a missed call for the one it rang at
        self.emit(call.devices(), lambda x: msg.diverted(x, c.call_id, c.global_id, diverting=device,
                                                          new_destination=new_destination, cause="redirected"))
        call.called = Party(new_destination, self._display(new_destination), "alerting")
        call.last_redirection = device
        if call.owner == device:
            call.owner = new_destination
        self._delivered(call, call.devices())
        return call

    def single_step_transfer(self, call_id: int, device: str, to: str) -> Call:
        """``device`` hands its call to ``to``: Transfered + ConnectionCleared for the old call, then
        a new call from the remaining party ringing at ``to``. Returns the new call."""
        call = self.get(call_id)
        party = self._party(call, device)
        remaining = call.other(party)
        transferring = party.device
        old_devices = call.devices()
        del self.calls[call_id]
        self._ended(call, [transferring])
        new = self._new(Party(remaining.device, remaining.name, "connected"),
                        Party(to, self._display(to), "alerting"), owner=to if self.name_of(to) else "",
                        direction="incoming")
        new.last_redirection = transferring
        old, n = call, new
        self.emit(old_devices, lambda x: msg.transfered(x, old.call_id, old.global_id, transferring=transferring,
                                                         transferred_to=to, new_call_id=n.call_id))
        self.emit(old_devices, lambda x: msg.connection_cleared(x, old.call_id, old.global_id, dropped=transferring,
                                                                 releasing=transferring, cause="singleStepTransfer"))
        self._delivered(new, new.devices())
        if not self.name_of(to):
            # An outside number has no phone in the simulator that could answer: the far end picks
            # up at once, so the transferred call does not ring forever.
            self.answer(new.call_id)
        return new

    def transfer(self, held_call_id: int, active_call_id: int, device: str) -> Call:
        """Consultative transfer: ``device`` leaves; the other parties of both calls are joined."""
        held_call, active_call = self.get(held_call_id), self.get(active_call_id)
        a = held_call.other(self._party(held_call, device))
        b = active_call.other(self._party(active_call, device))
        for call in (held_call, active_call):
            del self.calls[call.call_id]
            self._ended(call, [device])
            c = call
            self.emit(call.devices(), lambda x, c=c: msg.connection_cleared(x, c.call_id, c.global_id, dropped=device,
                                                                             releasing=device, cause="transfer"))
        joined = self._new(Party(a.device, a.name, "connected"), Party(b.device, b.name, "connected"), owner="",
                           direction="outgoing")
        joined.answered_at = joined.started_at
        j = joined
        self.emit(joined.devices(), lambda x: msg.established(
            x, j.call_id, j.global_id, j.first_call_id, answering=j.called.device, answering_name=j.called.name,
            calling=j.calling.device, calling_name=j.calling.name, called=j.called.device))
        return joined

    def park(self, call_id: int, device: str) -> Call:
        call = self.get(call_id)
        self._party(call, device)
        call.park_id = next(self._park_ids)
        park_id = call.park_id
        self.emit([device], lambda x: msg.call_park_info(x, park_id))
        return call

    def set_recording(self, call_id: int, device: str, active: bool, layout: str, monitored: str) -> Call:
        """Start/stop recording; RecordingStateEvent goes to ``monitored`` (the requesting user's ext)."""
        call = self.get(call_id)
        call.recording = active
        self.emit([monitored], lambda x: msg.recording_state(x, call_id, device, available=True, active=active,
                                                              layout=layout))
        return call

    def calls_of(self, device: str) -> list[Call]:
        return [c for c in self.calls.values() if c.party(device) is not None]
