"""One CSTA connection: TLS connect, the reader task, invoke ids, waiters, keepalive, deadlines.

Design (spec §13, fixes of §9.2–§9.4, §9.10, §9.11):

* A single reader task per connection reads frames with ``StreamReader.readexactly`` and
  dispatches each one synchronously (``_dispatch``; the matching rules are in
  docs/architecture.md, "Matching replies"): a frame on a pending command's invoke id belongs to
  that command — to the subscription the command registered for its root name if there is one
  (``ablist`` pages, ``callloginfo`` chunks or a ``HeldEvent`` sent with the request's id), else
  to its reply future; a frame on 9999 (or an id nobody waits for) goes to every subscription of
  its root name; a late frame for a finished command goes to nobody's subscription. Call and
  mailbox events are also handed to the session's bounded queue, whatever their id. Server
  keepalives are dropped. Nothing the reader calls can block.
* Waiters are registered **before** the command is written, so a fast reply is never lost.
* No task per command: a command is a future in a dict plus one timer for its deadline.
* One housekeeping timer per connection: the keepalive frame after ``keepalive`` seconds
  without sending, a liveness probe after ``keepalive`` seconds without receiving, and the end of
  the session after ``read_deadline`` seconds without any frame (half-open TCP, spec §9.10).
  The probe is ``GetServiceList`` (read-only, answered by every MX): the MX is not known to
  answer keepalives or to send anything to an idle client, so without a probe a healthy idle
  session would trip the read deadline.
* Frames are logged at DEBUG, redacted: ``<pwd>`` and ``softPhonePwd`` never appear, and
  ``mediaContent`` is shortened.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import ssl
from typing import Any, Callable
from xml.etree.ElementTree import Element

from mxproxy.config import MXConfig
from mxproxy.connectors.base import Event, SessionEnded
from mxproxy.connectors.errors import (
    CSTAError,
    MXAnswerTooLarge,
    MXBadRequest,
    MXConnectionFailed,
    MXError,
    MXProtocolError,
    MXSessionEnded,
    MXTimeout,
    MXTLSError,
)
from mxproxy.connectors.zultys import parsers
from mxproxy.connectors.zultys.framing import (
    EVENT_ID,
    HEADER_SIZE,
    KEEPALIVE_FRAME,
    MAX_PAYLOAD,
    FrameError,
    InvokeIds,
    decode_header,
    encode_frame,
)
from mxproxy.connectors.zultys.tls import check_pin
from mxproxy.connectors.zultys.trace import TraceWriter
from mxproxy.connectors.zultys.xml import parse

log = logging.getLogger("mxproxy.connectors.zultys")
frame_log = logging.getLogger("mxproxy.connectors.zultys.frames")

__all__ = ["CSTAClient", "Subscription", "redact", "open_tls"]

PROBE = "<GetServiceList></GetServiceList>"
#: Pause writers above this much unsent data (a stuck MX must not make us buffer without bound).
WRITE_HIGH_WATER = 256 * 1024
#: An MX answer that overflowed its frame (wrapped length, see ``_rest_of_wrapped_frame``) is
#: taken whole up to this size; a larger one fails its command with ``MXAnswerTooLarge``.
MAX_ANSWER = 1024 * 1024
WRAP_STEP = 0x10000  # what a 16-bit length loses each time it wraps
MAX_WRAPS = 256  # 16 MiB: beyond it the stream is not CSTA any more and the session ends
_ROOT = re.compile(rb"<([A-Za-z_][^\s/>]*)")


def closes_its_root(payload: bytes, start: bytes | None = None) -> bool:
    """Whether a payload ends its root element (``</root>`` or a self-closed ``<root/>``);
    ``start``: the message's first bytes when ``payload`` is only its tail. Cheap, not a parse:
    it only tells a whole message from the first part of an overflowed one."""
    end = payload[-512:].rstrip()
    if not end:
        return True
    match = _ROOT.search(payload[:512] if start is None else start)
    if match is None:
        return True  # nothing element-like: leave it to the parser
    return end.endswith(b"/>") or end.endswith(b"</" + match.group(1) + b">")


def is_frame_header(head: bytes) -> bool:
    """Eight bytes that start a frame (XML text never holds the zero bytes of its first two)."""
    return head[:2] == b"\x00\x00" and head[4:8].isdigit() and int.from_bytes(head[2:4], "big") >= HEADER_SIZE


#: Plain-text read buffer of our TLS transport; asyncio's default is 256 KiB per connection,
#: which alone would be 2.5 GB for 10 000 idle sessions. Frames are ≤ 64 KiB anyway.
TLS_READ_BUFFER = 16 * 1024
#: How many finished commands' ids are remembered, so their late frames are recognised as late.
FINISHED_MEMORY = 256
_EVENT_NAMES = parsers.EVENT_PARSERS.keys()

# -- redaction ---------------------------------------------------------------------------------

_PWD = re.compile(rb"<pwd>.*?</pwd>", re.S)
_SOFT = re.compile(rb'softPhonePwd="[^"]*"')
_MEDIA = re.compile(rb"(<mediaContent>)([^<]{24})[^<]+(</mediaContent>)")


def redact(payload: bytes) -> str:
    """The payload as text fit for a log: secrets removed, audio shortened."""
    if b"<pwd>" in payload:
        payload = _PWD.sub(b"<pwd>[redacted]</pwd>", payload)
    if b"softPhonePwd" in payload:
        payload = _SOFT.sub(b'softPhonePwd="[redacted]"', payload)
    if b"<mediaContent>" in payload:
        payload = _MEDIA.sub(lambda m: m.group(1) + m.group(2) + b"...(%d bytes)" % (len(m.group(0)) - 29)
                             + m.group(3), payload)
    return payload.decode("utf-8", "replace")


# -- TLS transport -----------------------------------------------------------------------------

try:  # a leaner SSLProtocol: same code, smaller read buffer (see TLS_READ_BUFFER)
    from asyncio import sslproto as _sslproto

    class _LeanSSLProtocol(_sslproto.SSLProtocol):  # type: ignore[misc, name-defined]
        max_size = TLS_READ_BUFFER

except (ImportError, AttributeError):  # pragma: no cover - other Python implementations
    _LeanSSLProtocol = None  # type: ignore[assignment, misc]


async def _connect_tls(loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol, host: str, port: int,
                       ctx: ssl.SSLContext, handshake_timeout: float,
                       session: ssl.SSLSession | None = None) -> asyncio.BaseTransport:
    if _LeanSSLProtocol is not None:
        waiter = loop.create_future()
        try:
            ssl_protocol = _LeanSSLProtocol(loop, protocol, ctx, waiter, server_side=False, server_hostname=host,
                                            ssl_handshake_timeout=handshake_timeout)
        except TypeError:  # pragma: no cover - a Python whose SSLProtocol signature changed
            pass
        else:
            if session is not None:
                # the SSLObject exists, the handshake starts once TCP is up: offer the session
                # (asyncio's create_connection has no way to pass one)
                try:
                    ssl_protocol._sslobj.session = session  # noqa: SLF001
                except (AttributeError, ValueError, TypeError):  # pragma: no cover - not resumable here
                    pass
            raw, _ = await loop.create_connection(lambda: ssl_protocol, host, port)
            try:
                await waiter
            except BaseException:
                raw.close()
                raise
            return ssl_protocol._app_transport  # noqa: SLF001 - what loop.create_connection returns too
    transport, _ = await loop.create_connection(lambda: protocol, host, port, ssl=ctx, server_hostname=host,
                                                ssl_handshake_timeout=handshake_timeout)
    return transport


async def open_tls(host: str, port: int, ctx: ssl.SSLContext, *, timeout: float, pin: str | None = None,
                   session: ssl.SSLSession | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """TCP + TLS (+ pin check) within ``timeout``, offering ``session`` for resumption (a server
    that declines makes a full handshake). Raises MXTimeout (connect timeouts are timeouts, so
    the API can answer 504), MXTLSError, or MXConnectionFailed."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    try:
        async with asyncio.timeout(timeout):
            transport = await _connect_tls(loop, protocol, host, port, ctx, max(timeout, 0.001), session)
    except TimeoutError:
        raise MXTimeout(f"connecting to MX {host}:{port} timed out after {timeout:g}s") from None
    except (ssl.SSLError, ssl.CertificateError) as exc:
        raise MXTLSError(f"TLS handshake with MX {host}:{port} failed: {exc}") from None
    except OSError as exc:
        raise MXConnectionFailed(f"cannot connect to MX {host}:{port}: {exc.strerror or exc}") from None
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)  # type: ignore[arg-type]
    if pin:
        try:
            check_pin(transport.get_extra_info("ssl_object"), pin)
        except MXTLSError:
            transport.abort()
            raise
    return reader, writer


# -- waiting by root name ----------------------------------------------------------------------


class Subscription:
    """Messages of one root name (optionally filtered) collected for one operation.

    Registered before the command that causes them is written; the reader ``offer``s every
    matching message; the operation ``get``s them in order. Bounded, so a forgotten subscription
    cannot grow without limit."""

    __slots__ = ("name", "names", "predicate", "owner", "_items", "_waiter", "_error")

    LIMIT = 1000

    def __init__(self, name: str, predicate: Callable[[Element], bool] | None = None,
                 also: tuple[str, ...] = ()) -> None:
        self.name = name
        #: Every root name collected (a spelling variant such as ``TransferredEvent``).
        self.names = (name, *also)
        self.predicate = predicate
        #: Invoke id of the command this subscription collects for (set by ``CSTAClient.begin``):
        #: frames on that id reach only this command's subscriptions.
        self.owner: int | None = None
        self._items: collections.deque[Element] = collections.deque(maxlen=self.LIMIT)
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None

    def offer(self, el: Element) -> bool:
        if self.predicate is not None and not self.predicate(el):
            return False
        self._items.append(el)
        self._wake()
        return True

    def fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self, *_: object) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def ready(self) -> bool:
        """A message is waiting (``get`` returns at once)."""
        return bool(self._items)

    def wake_on(self, fut: asyncio.Future[Any]) -> None:
        """Make ``wait`` return when ``fut`` completes (an operation waiting for either)."""
        fut.add_done_callback(self._wake)

    async def wait(self, timeout: float) -> None:
        """Return when a message is queued, the subscription failed, a ``wake_on`` future is
        done, or after ``timeout`` seconds — whichever is first. Raises nothing itself."""
        if self._items or self._error is not None or timeout <= 0:
            return
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        handle = loop.call_later(timeout, self._wake)
        try:
            await waiter
        finally:
            handle.cancel()
            self._waiter = None

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    async def get(self, timeout: float) -> Element:
        """The next message; MXTimeout after ``timeout`` seconds without one."""
        while not self._items:
            if self._error is not None:
                raise self._error
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            handle = loop.call_later(timeout, _expire, waiter)
            try:
                await waiter
            finally:
                handle.cancel()
                self._waiter = None
        return self._items.popleft()


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(MXTimeout())


# -- the connection ----------------------------------------------------------------------------


class CSTAClient:
    """A logged-in-or-not CSTA connection. ``on_event`` receives typed events (never blocks);
    ``on_end`` receives the final ``SessionEnded`` exactly once."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, config: MXConfig, *,
                 label: str, on_event: Callable[[Event], None], on_end: Callable[[SessionEnded], None]) -> None:
        self._reader = reader
        self._writer = writer
        self._transport = writer.transport
        self._config = config
        self.label = label
        self._on_event = on_event
        self._on_end = on_end
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, asyncio.Future[Element]] = {}
        self._subs: dict[str, list[Subscription]] = {}
        #: invoke id -> the subscriptions its command registered (``begin(..., subs=…)``).
        self._owned: dict[int, tuple[Subscription, ...]] = {}
        #: Ids of recently finished commands: their late frames must not reach a newer command.
        self._finished: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._ids = InvokeIds()
        self.timeout = config.response_timeout
        now = self._loop.time()
        self._last_send = now
        self._last_recv = now
        self._last_probe = now
        self._timer: asyncio.TimerHandle | None = None
        self.ended: SessionEnded | None = None
        self._reader_task: asyncio.Task[None] | None = None
        #: Frames are also written here while a CSTA trace is on (``trace.py``).
        self.trace: TraceWriter | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._reader_task = self._loop.create_task(self._read_loop(), name=f"mx-reader {self.label}")
        self._arm()

    @property
    def alive(self) -> bool:
        return self.ended is None

    def end(self, mode: str, reason: str = "", *, graceful: bool = True) -> None:
        """Finish the session once: fail every waiter, close the socket, report SessionEnded."""
        if self.ended is not None:
            return
        self.ended = ended = SessionEnded(mode=mode, reason=reason)
        error = MXSessionEnded(mode, f"logout: {mode}" if mode not in ("closed", "error") else reason or mode)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(error)
        self._pending.clear()
        for subs in self._subs.values():
            for sub in subs:
                sub.fail(error)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.trace is not None:
            self.trace.close()
        try:
            if graceful:
                self._writer.close()
            else:
                self._transport.abort()
        except Exception:  # the transport may already be gone  # pragma: no cover
            pass
        task = self._reader_task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
        if mode in ("closed", "error") and reason:
            log.info("MX session %s ended (%s): %s", self.label, mode, reason)
        self._on_end(ended)

    async def wait_closed(self, timeout: float = 1.0) -> None:
        try:
            await asyncio.wait_for(self._writer.wait_closed(), timeout)
        except (asyncio.TimeoutError, ConnectionError, ssl.SSLError, OSError):
            pass

    # -- sending -------------------------------------------------------------------------------

    def _write(self, invoke_id: int, xml: str) -> None:
        if self.ended is not None:
            raise MXSessionEnded(self.ended.mode, self.ended.reason or None)
        try:
            frame = encode_frame(invoke_id, xml)
        except FrameError as exc:
            raise MXBadRequest(f"command too large for one CSTA frame: {exc}") from None
        if frame_log.isEnabledFor(logging.DEBUG):
            frame_log.debug("%s -> %04d %s", self.label, invoke_id, redact(frame[HEADER_SIZE:]))
        if self.trace is not None:
            self.trace.record("out", invoke_id, xml)
        self._transport.write(frame)
        self._last_send = self._loop.time()

    def send(self, xml: str) -> int:
        """Fire and forget (``presence``, ``iq set mode``, ``logout``); returns the invoke id."""
        iid = self._next_id()
        self._write(iid, xml)
        return iid

    def _next_id(self) -> int:
        try:
            return self._ids.next(self._pending)
        except FrameError as exc:
            raise MXError(str(exc)) from None

    def begin(self, xml: str, subs: tuple[Subscription, ...] = ()) -> tuple[int, asyncio.Future[Element]]:
        """Write a command whose reply (if any) is collected later; returns its invoke id and
        reply future, registered before writing. ``subs`` are the command's own subscriptions:
        a frame on its invoke id whose root name one of them waits for goes there instead of to
        the future. The caller must ``finish`` it."""
        iid = self._next_id()
        fut: asyncio.Future[Element] = self._loop.create_future()
        self._pending[iid] = fut
        if subs:
            for sub in subs:
                sub.owner = iid
            self._owned[iid] = subs
        try:
            self._write(iid, xml)
        except BaseException:
            del self._pending[iid]
            self._owned.pop(iid, None)
            raise
        return iid, fut

    def finish(self, iid: int, fut: asyncio.Future[Element]) -> None:
        if self._pending.get(iid) is fut:
            del self._pending[iid]
            self._owned.pop(iid, None)
            finished = self._finished
            finished[iid] = None
            if len(finished) > FINISHED_MEMORY:
                finished.popitem(last=False)
        if not fut.done():
            fut.cancel()
        elif not fut.cancelled():
            fut.exception()  # retrieved: no "never retrieved" noise

    async def request(self, xml: str, timeout: float | None = None, subs: tuple[Subscription, ...] = ()) -> Element:
        """Write a command and return its direct response (same invoke id).
        ``CSTAErrorCode`` → CSTAError; no reply in time → MXTimeout. ``subs``: see ``begin``."""
        iid, fut = self.begin(xml, subs)
        handle = self._loop.call_later(self.timeout if timeout is None else timeout, _expire, fut)
        try:
            if self._transport.get_write_buffer_size() > WRITE_HIGH_WATER:
                await self._writer.drain()
            el = await fut
        finally:
            handle.cancel()
            self.finish(iid, fut)
        if el.tag == "CSTAErrorCode":
            raise CSTAError(parsers.csta_error_text(el))
        return el

    def failing_on_error(self, fut: asyncio.Future[Element], sub: Subscription) -> None:
        """Make a CSTAErrorCode reply to ``fut``'s command fail ``sub`` (stream requests)."""

        def done(f: asyncio.Future[Element]) -> None:
            if f.cancelled():
                return
            exc = f.exception()
            if exc is not None:
                sub.fail(exc)
            elif f.result().tag == "CSTAErrorCode":
                sub.fail(CSTAError(parsers.csta_error_text(f.result())))

        fut.add_done_callback(done)

    async def request_with_event(self, xml: str, sub: Subscription, *, grace: float,
                                 wait_for_event: bool = True) -> tuple[Element | None, Element | None]:
        """Write a command that the MX may answer with a direct response, with the event ``sub``
        waits for, or with both in either order; returns ``(response, event)``, one of them
        possibly None. Whichever comes first has the response timeout; the other one then gets
        ``grace`` seconds (no wait for the event when ``wait_for_event`` is false). A
        ``CSTAErrorCode`` on the command's id fails it, also after the event."""
        iid, fut = self.begin(xml, subs=(sub,))
        sub.wake_on(fut)
        loop = self._loop
        try:
            if self._transport.get_write_buffer_size() > WRITE_HIGH_WATER:
                await self._writer.drain()
            deadline = loop.time() + self.timeout
            while not fut.done() and not sub.ready:
                sub.raise_error()
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise MXTimeout()
                await sub.wait(remaining)
            if not fut.done():  # the event came: a response (or an error) may follow
                await asyncio.wait((fut,), timeout=grace)
            elif wait_for_event and not sub.ready and fut.exception() is None:
                await sub.wait(grace)
            response = None
            if fut.done():
                response = fut.result()
                if response.tag == "CSTAErrorCode":
                    raise CSTAError(parsers.csta_error_text(response))
            event = await sub.get(0) if sub.ready else None
            return response, event
        finally:
            self.finish(iid, fut)

    # -- subscriptions -------------------------------------------------------------------------

    def subscribe(self, name: str, predicate: Callable[[Element], bool] | None = None,
                  also: tuple[str, ...] = ()) -> Subscription:
        sub = Subscription(name, predicate, also)
        if self.ended is not None:
            sub.fail(MXSessionEnded(self.ended.mode, self.ended.reason or None))
        for each in sub.names:
            self._subs.setdefault(each, []).append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        for name in sub.names:
            subs = self._subs.get(name)
            if subs is not None:
                try:
                    subs.remove(sub)
                except ValueError:
                    pass
                if not subs:
                    del self._subs[name]

    # -- reading -------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        reader = self._reader
        next_header: bytes | None = None
        try:
            while True:
                header = next_header or await reader.readexactly(HEADER_SIZE)
                length, invoke_id = decode_header(header)
                payload = await reader.readexactly(length) if length else b""
                next_header = None
                if not closes_its_root(payload):
                    payload, next_header = await self._rest_of_wrapped_frame(payload)
                self._last_recv = self._loop.time()
                if payload is None:
                    self._answer_too_large(invoke_id)
                    continue
                self._dispatch(invoke_id, payload)
                if self.ended is not None:
                    return
        except asyncio.IncompleteReadError:
            self.end("closed", "the MX closed the connection")
        except FrameError as exc:
            self.end("error", f"bad frame from the MX: {exc}", graceful=False)
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            self.end("closed", f"connection to the MX lost: {exc}", graceful=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must end the session visibly, not hang it
            log.exception("MX session %s: reader failed", self.label)
            self.end("error", f"reader failed: {exc}", graceful=False)

    async def _rest_of_wrapped_frame(self, payload: bytes) -> tuple[bytes | None, bytes | None]:
        """A payload whose root element is not closed: either a malformed message (the next 8
        bytes are a frame header: returned, for the loop to go on with) or the first part of an
        answer longer than a frame, written with its 16-bit length wrapped (spec §1.3; an MX
        with hundreds of conferences): the rest follows in whole 65 536-byte steps. Kept up to
        ``MAX_ANSWER`` bytes (the whole message is returned); beyond that it is read and dropped
        (None), so the stream stays in step and only that command fails."""
        reader = self._reader
        kept: bytearray | None = bytearray(payload)
        start, tail = payload[:512], payload[-WRAP_STEP:]
        for step in range(MAX_WRAPS):
            head = await reader.readexactly(HEADER_SIZE)
            if step == 0 and is_frame_header(head):
                return payload, head  # not a wrapped frame: a malformed one, for the parser to judge
            chunk = head + await reader.readexactly(WRAP_STEP - HEADER_SIZE)
            if kept is not None:
                kept += chunk
                if len(kept) > MAX_ANSWER:
                    kept = None
            tail = tail[-1024:] + chunk
            if closes_its_root(tail, start):
                return (bytes(kept) if kept is not None else None), None
        raise FrameError(f"an MX message longer than {MAX_WRAPS} wrapped frames")

    def _answer_too_large(self, invoke_id: int) -> None:
        log.warning("MX session %s: dropped an answer larger than %d bytes (id %04d)", self.label,
                    MAX_ANSWER, invoke_id)
        fut = self._pending.get(invoke_id) if invoke_id != EVENT_ID else None
        if fut is not None and not fut.done():
            fut.set_exception(MXAnswerTooLarge(
                f"the MX answer is larger than {MAX_ANSWER} bytes (CSTA frames carry {MAX_PAYLOAD}); "
                "e.g. too many conferences to list: delete some"))

    def _dispatch(self, invoke_id: int, payload: bytes) -> None:
        if frame_log.isEnabledFor(logging.DEBUG):
            frame_log.debug("%s <- %04d %s", self.label, invoke_id, redact(payload))
        if self.trace is not None:
            self.trace.record("in", invoke_id, payload)
        if not payload.strip():
            return
        try:
            root = parse(payload, max_size=MAX_ANSWER)  # a wrapped answer may be longer than a frame
        except MXProtocolError as exc:
            # the framing is intact, so the connection can go on; a waiter for this id fails now
            log.warning("MX session %s: ignoring an unreadable message (id %04d): %s", self.label, invoke_id, exc)
            fut = self._pending.get(invoke_id) if invoke_id != EVENT_ID else None
            if fut is not None and not fut.done():
                fut.set_exception(exc)
            return
        name = root.tag
        if name == "keepalive":
            return  # a server keepalive (any id): nothing to answer, it only proves liveness
        if name == "Logout":
            self.end(root.get("mode") or "forced", "the MX ended the session")
            return
        if invoke_id != EVENT_ID:
            fut = self._pending.get(invoke_id)
            if fut is not None:
                # this command's frame: its own subscription of that name, else its reply
                owned = self._owned.get(invoke_id)
                taken = False
                if owned:
                    for sub in owned:
                        if name in sub.names and sub.offer(root):
                            taken = True
                if not taken:
                    if not fut.done():
                        fut.set_result(root)
                    elif name == "CSTAErrorCode":
                        log.warning("MX session %s: CSTA error %r after the reply to %04d", self.label,
                                    parsers.csta_error_text(root), invoke_id)
                if name in _EVENT_NAMES:  # a call event sent on the request's id
                    self._emit_event(root, invoke_id)
                return
            if invoke_id in self._finished:
                # a late frame of a finished command: never offered to a newer command
                if not self._emit_event(root, invoke_id):
                    log.debug("MX session %s: late %s for finished command %04d ignored", self.label, name,
                              invoke_id)
                return
        subs = self._subs.get(name)
        if subs:
            for sub in subs:  # every interested operation sees it; each matches its own content
                sub.offer(root)
        if not self._emit_event(root, invoke_id) and name == "CSTAErrorCode":
            log.warning("MX session %s: unsolicited CSTA error %r (id %04d)", self.label,
                        parsers.csta_error_text(root), invoke_id)

    def _emit_event(self, root: Element, invoke_id: int) -> bool:
        """Hand a message that is an event we model to the session's queue; False when it is not one."""
        if root.tag not in _EVENT_NAMES:
            return False
        try:
            event = parsers.event(root)
        except Exception as exc:  # a bad event is skipped, the session goes on (spec §9.12)
            log.warning("MX session %s: skipping a malformed %s (id %04d): %s", self.label, root.tag, invoke_id, exc)
            return True
        if event is None:
            return False
        self._on_event(event)
        return True

    # -- keepalive and liveness ----------------------------------------------------------------

    def _arm(self) -> None:
        cfg = self._config
        deadlines = []
        if cfg.keepalive > 0:
            deadlines.append(self._last_send + cfg.keepalive)
            if cfg.read_deadline > 0:
                deadlines.append(max(self._last_recv, self._last_probe) + cfg.keepalive)
        if cfg.read_deadline > 0:
            deadlines.append(self._last_recv + cfg.read_deadline)
        if deadlines:
            when = max(min(deadlines), self._loop.time() + 0.001)
            self._timer = self._loop.call_at(when, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self.ended is not None:
            return
        cfg = self._config
        now = self._loop.time()
        try:
            if cfg.read_deadline > 0 and now - self._last_recv >= cfg.read_deadline:
                self.end("closed", f"no frame from the MX for {cfg.read_deadline:g}s", graceful=False)
                return
            if cfg.keepalive > 0 and now - self._last_send >= cfg.keepalive:
                if frame_log.isEnabledFor(logging.DEBUG):
                    frame_log.debug("%s -> 0000 <keepalive />", self.label)
                self._transport.write(KEEPALIVE_FRAME)
                if self.trace is not None:
                    self.trace.record("out", 0, KEEPALIVE_FRAME[HEADER_SIZE:])
                self._last_send = now
            if (cfg.keepalive > 0 and cfg.read_deadline > 0 and now - self._last_recv >= cfg.keepalive
                    and now - self._last_probe >= cfg.keepalive):
                self._last_probe = now
                self.send(PROBE)
        except (MXError, OSError, RuntimeError) as exc:  # pragma: no cover - transport died under us
            self.end("closed", f"cannot write to the MX: {exc}", graceful=False)
            return
        self._arm()
