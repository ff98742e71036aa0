"""Switches for the protocol questions no source answers (spec §10, §12 item 10).

Every default is the spec's recommendation, so a plain ``Quirks()`` is "the most likely real MX".
Tests and the CLI (``--quirk NAME=VALUE``) flip them to exercise a client's other code paths.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Iterable

__all__ = ["Quirks", "QuirkError", "MAX_MAIL_CHUNK", "PROFILES"]

# 48 000 raw bytes are 64 000 base64 characters; with the chunk's XML envelope that still fits
# the 65 527-byte payload limit of one frame (spec §1.3).
MAX_MAIL_CHUNK = 48_000

_CHOICES: dict[str, tuple[str, ...]] = {
    "recording_layout": ("both", "root", "connection"),
    "empty_call_log": ("empty", "nothing"),
    "next_chunk_past_end": ("error", "repeat"),
    "mail_list_default": ("VoiceMail", "Recording", "Fax", "Undefined", "all"),
    "oversized_answer": ("drop", "wrap"),
    "multipart_invoke_id": ("event", "request", "mixed"),
    "mail_chunk_invoke_id": ("request", "event"),
    "call_control_reply": ("both", "event", "event-first", "response"),
    "call_event_invoke_id": ("event", "request"),
    "error_layout": ("child", "root"),
    "empty_elements": ("open-close", "self-closing"),
    "booleans": ("word", "digit", "letter", "upper"),
    "login_reply": ("loginResponce", "loginResponse"),
    "tls_version": ("1.3", "1.2"),
}

#: Named sets of quirks (``--profile NAME``): each a reading of the spec's open questions that a
#: real MX may take. The connector's operation tests and the API route tests run against every
#: one of them, so a new variant is one line here.
PROFILES: dict[str, dict[str, object]] = {
    # today's defaults: the spec's recommendations
    "spec": {},
    # the MX stand-in of issue 8: multi-part results on the request's id, call control answered by the event only
    "name-matched": {"multipart_invoke_id": "request", "call_control_reply": "event"},
    # everything in the order it happens: the call event first, then the response; the
    # requester's copy of the event carries the request's invoke id
    "strict-order": {"call_control_reply": "event-first", "call_event_invoke_id": "request"},
    # ids in every mix: pages/chunks alternate 9999 and the request's id, voicemail chunks on 9999
    "mixed": {"multipart_invoke_id": "mixed", "mail_chunk_invoke_id": "event", "call_event_invoke_id": "request"},
    # the XML the Go readers accept in all its forms
    "dialect": {"xml_prolog": True, "reply_namespace": True, "empty_elements": "self-closing", "booleans": "digit",
                "mail_media_type": False, "login_reply": "loginResponse", "extra_markup": True, "mode_reply": True,
                "server_keepalive": 0.5, "error_layout": "root"},
}


class QuirkError(ValueError):
    """A quirk name or value that does not exist / does not parse."""


@dataclass(frozen=True)
class Quirks:
    #: C4: where ``RecordingStateEvent`` carries the call: ``root`` (MX Proxy reads callID/deviceID
    #: at the root), ``connection`` (mx-http-proxy reads connection/…), or ``both``.
    recording_layout: str = "both"
    #: Empty call log: ``empty`` sends ``<callloginfo></callloginfo>``; ``nothing`` sends no frame
    #: at all (the client must end on its timeout).
    empty_call_log: str = "empty"
    #: ``MailReceiveIncoming`` + ``nextChunk`` after the last chunk: ``error`` answers
    #: ``CSTAErrorCode``; ``repeat`` sends the last chunk again.
    next_chunk_past_end: str = "error"
    #: What ``MailGetListIncoming`` without ``mediaType`` lists: one media type, or ``all`` of them.
    mail_list_default: str = "VoiceMail"
    #: Refuse Mail* commands with ``CSTAErrorCode`` while the session has no monitor (2017 note).
    monitor_required_for_mail: bool = False
    #: ``callinfo`` records per ``callloginfo`` frame.
    call_log_chunk: int = 21
    #: After a last chunk that is exactly full, send an empty ``callloginfo`` as an end marker
    #: (not something a real MX is known to do).
    call_log_end_marker: bool = False
    #: ``abentry`` records per ``ablist`` page (clients assume 50).
    ab_page_size: int = 50
    #: Raw bytes per ``MailReceiveIncoming`` chunk (base64 makes it 4/3 larger on the wire).
    mail_chunk_size: int = 32 * 1024
    #: Answer commands sent before a successful login with ``CSTAErrorCode`` instead of ignoring them.
    error_before_login: bool = False
    #: ``User`` logins may monitor only their own extension (``Server`` logins any).
    user_monitor_own_only: bool = True
    #: Send the user's own ``presence`` (from="0") right after ``loginResponce``.
    presence_after_login: bool = True
    #: Seconds between a direct response and the 9999 events it causes (MX Proxy's waiter race).
    event_gap: float = 0.01
    #: Seconds between ``Logout mode=…`` and closing the socket.
    logout_close_delay: float = 0.1
    #: Close a connection after this many seconds without any client frame (0 = never).
    idle_timeout: float = 0.0
    #: Put the ECMA-323 ed4 namespace on ``CSTAErrorCode``.
    error_namespace: bool = False
    #: Accept ``MonitorStartAb`` (then send ``Ab*UserEvent``s); false answers it with
    #: ``CSTAErrorCode`` (an MX without address-book notifications).
    address_book_events: bool = True
    #: An answer too large for one frame (e.g. ``ConfList`` of hundreds of conferences): ``drop``
    #: sends nothing (spec §12: never a frame > 65 535 bytes; the client times out); ``wrap``
    #: writes it whole with the length field wrapped at 16 bits, as a writer that does not check
    #: it (spec §1.3).
    oversized_answer: str = "drop"
    #: Invoke id of ``ablist`` pages and ``callloginfo`` chunks: ``event`` (9999, spec §3.1),
    #: ``request`` (the request's id) or ``mixed`` (alternating, 9999 first).
    multipart_invoke_id: str = "event"
    #: Invoke id of ``MailReceiveIncoming`` chunks: ``request`` (a direct response) or ``event`` (9999).
    mail_chunk_invoke_id: str = "request"
    #: How call control (ClearConnection, HoldCall, RetrieveCall, AnswerCall,
    #: SingleStepTransferCall, Start/StopRecording) is answered: ``both`` (response, then the
    #: events), ``event`` (the events only), ``event-first`` (events, then the response) or
    #: ``response`` (the requesting session gets no copy of the events).
    call_control_reply: str = "both"
    #: The requesting session's copy of the events a call-control command causes: on ``event``
    #: (9999) or on the ``request``'s invoke id.
    call_event_invoke_id: str = "event"
    #: ``CSTAErrorCode`` text in an ECMA-323 ``child`` element or in the ``root`` itself.
    error_layout: str = "child"
    #: Prefix every message with ``<?xml version="1.0" encoding="utf-8"?>``.
    xml_prolog: bool = False
    #: Put the ECMA-323 ed4 namespace on every message's root.
    reply_namespace: bool = False
    #: Empty elements as ``<x></x>`` (Go) or ``<x/>``.
    empty_elements: str = "open-close"
    #: Booleans as ``true/false`` (word), ``1/0`` (digit), ``t/f`` (letter) or ``TRUE/FALSE`` (upper).
    booleans: str = "word"
    #: ``mail`` items of a mailbox list carry a ``mediaType`` child.
    mail_media_type: bool = True
    #: Root name of a successful login reply (the MX spells it ``loginResponce``).
    login_reply: str = "loginResponce"
    #: An unknown attribute on every element and an unknown element in every message.
    extra_markup: bool = False
    #: Answer ``iq set mode`` with ``<iq type="result" id="mode"/>`` on its invoke id.
    mode_reply: bool = False
    #: Send ``0000<keepalive />`` to logged-in clients every this many seconds (0 = never).
    server_keepalive: float = 0.0
    #: Highest TLS version offered (``1.2``: what [BASE] negotiates). Read when the simulator starts.
    tls_version: str = "1.3"
    #: Let clients resume TLS sessions (TLS 1.3 tickets, TLS 1.2 session ids and tickets); false
    #: makes every handshake a full one (no tickets are issued and the session cache starts empty
    #: for each connection). Read when the simulator starts.
    tls_resumption: bool = True

    @classmethod
    def profile(cls, name: str, overrides: Iterable[str] = ()) -> "Quirks":
        """The quirks of a named profile (``PROFILES``), then ``NAME=VALUE`` overrides."""
        try:
            values = PROFILES[name]
        except KeyError:
            raise QuirkError(f"unknown profile {name!r} (expected one of: {', '.join(PROFILES)})") from None
        return cls(**values).with_overrides(overrides)  # type: ignore[arg-type]

    @property
    def reshapes_xml(self) -> bool:
        """Some quirk rewrites outgoing XML (``mxproxy.simulator.dialect``)."""
        return (self.xml_prolog or self.reply_namespace or self.extra_markup or self.empty_elements != "open-close"
                or self.booleans != "word")

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise QuirkError(f"quirk {name}={value!r}: expected one of {', '.join(allowed)}")
        if not 1 <= self.call_log_chunk <= 500:
            raise QuirkError("quirk call_log_chunk must be between 1 and 500")
        if not 1 <= self.ab_page_size <= 100:
            raise QuirkError("quirk ab_page_size must be between 1 and 100")
        if not 1 <= self.mail_chunk_size <= MAX_MAIL_CHUNK:
            raise QuirkError(f"quirk mail_chunk_size must be between 1 and {MAX_MAIL_CHUNK}")
        for name in ("event_gap", "logout_close_delay", "idle_timeout", "server_keepalive"):
            if getattr(self, name) < 0:
                raise QuirkError(f"quirk {name} must not be negative")

    def with_overrides(self, pairs: Iterable[str]) -> "Quirks":
        """Apply ``NAME=VALUE`` strings (the CLI's ``--quirk``), converting by the field's type."""
        types = {f.name: f.type for f in fields(self)}
        changes: dict[str, object] = {}
        for pair in pairs:
            name, sep, raw = pair.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in types:
                known = ", ".join(sorted(types))
                raise QuirkError(f"unknown quirk {pair!r} (expected NAME=VALUE, NAME one of: {known})")
            changes[name] = _convert(name, str(types[name]), raw.strip())
        return replace(self, **changes)  # type: ignore[arg-type]


def _convert(name: str, type_name: str, raw: str) -> object:
    try:
        if type_name == "bool":
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
    except ValueError:
        raise QuirkError(f"quirk {name}: {raw!r} is not a valid {type_name}") from None
    return raw
