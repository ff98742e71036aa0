"""``GET /events``: a user's events (``mxproxy.events``) live, as Server-Sent Events.

One stream = one bus subscription (``EventBus.subscribe``) whose sink only appends to a bounded
queue: the MX session's event handling never waits for a reader. The stream's coroutine writes
what is queued (all of it in one write), a ``: heartbeat`` after ``[sse] heartbeat`` without
one, and ends with ``event: end`` + a reason:

* ``signed-out`` — DELETE /auth, the admin's sign-out or drop (the bus closes the user's
  subscriptions), or the token's revocation seen by the periodic token check (a sign-out the
  owner heard of only through the store);
* ``needs-reauth`` — the MX refused the stored password: the user must sign in again;
* ``token-expired`` — at the token's ``exp`` (``token-invalid``: it stopped verifying otherwise);
* ``overflow`` — the reader fell ``[sse] queueSize`` events behind (queued ones are dropped);
* ``moved`` — the user's events moved to another instance (cluster): reconnect, the API
  forwards there;
* ``shutdown`` — this instance is stopping; ``max-duration`` — ``[sse] maxDuration`` passed.

Each ``end`` carries ``lastId``, the id to resume from: reconnecting with ``Last-Event-ID`` (or
``?since=``) replays from the bus history exactly the events after it; when the history no longer
reaches back that far, ``event: gap`` says so (nothing is replayed then: the client resynchronises
from the REST API, e.g. ``GET /calls``, and the stream goes on live).

Errors before the stream starts are JSON ``{"error": …}`` (401/503 as every route, 400 for bad
parameters, 429 beyond ``[sse] maxPerUser`` / ``maxStreams``). In a cluster the stream is served by
the user's owner (the forwarding middleware relays it, ``mxproxy.api.forwarding``), so the
per-user limit holds for the whole service.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter, deque
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from starlette.requests import Request
from starlette.responses import Response

from mxproxy.api.auth import context, current_claims
from mxproxy.api.errors import ApiError
from mxproxy.api.forwarding import signed_out
from mxproxy.api.sse import (HEARTBEAT, MEDIA_TYPE, STREAM_HEADERS, SSEResponse, control_frame, end_frame,
                             event_frame, retry_frame)
from mxproxy.auth.errors import InvalidToken
from mxproxy.events import bus as bus_reasons
from mxproxy.events.model import EVENT_TYPES
from mxproxy.sessions.errors import NotSignedIn, SessionUnavailable
from mxproxy.store.base import StoreError

if TYPE_CHECKING:
    from mxproxy.api.context import ApiContext
    from mxproxy.config import SSEConfig
    from mxproxy.events.model import Event

log = logging.getLogger("mxproxy.sse")

PATH = "/events"
MAX_ID = 2**63 - 1
LIMITED_RETRY_AFTER = 5  # seconds: a stream of the user (or of anyone) has to end first
STOPPING_RETRY_AFTER = 5  # as SessionManager.sign_in while the server stops

#: End reasons (``event: end`` data); the bus's own close reasons pass through as they are.
SIGNED_OUT = bus_reasons.SIGNED_OUT  # "signed-out"
MOVED = bus_reasons.MOVED  # "moved"
SHUTDOWN = bus_reasons.SHUTDOWN  # "shutdown"
TOKEN_EXPIRED = "token-expired"
TOKEN_INVALID = "token-invalid"
OVERFLOW = "overflow"
MAX_DURATION = "max-duration"


class StreamHub:
    """Every open stream of this instance: the limits, and ending them all (shutdown).
    Forwarded streams (``hop``) count against ``maxStreams`` too: they hold a connection here and
    one to the owner."""

    def __init__(self, config: "SSEConfig") -> None:
        self.config = config
        self._by_user: dict[str, set[EventStream]] = {}
        self.served = 0
        self.hops = 0
        self.opened = 0
        self.ended: Counter[str] = Counter()  # end reasons, "closed" when the client went away
        self.stopping = False  # the server is stopping: no new streams

    @property
    def open(self) -> int:
        return self.served + self.hops

    def _admit_total(self) -> None:
        if self.stopping:
            raise ApiError(503, "server is stopping", {"Retry-After": str(STOPPING_RETRY_AFTER)})
        if self.open >= self.config.max_streams:
            raise ApiError(429, "too many open event streams on this server; retry later",
                           {"Retry-After": str(LIMITED_RETRY_AFTER)})

    def admit(self, login: str) -> None:
        """429 unless one more stream of ``login`` fits both limits."""
        self._admit_total()
        if len(self._by_user.get(login, ())) >= self.config.max_per_user:
            raise ApiError(429, f"at most {self.config.max_per_user} open event streams per user",
                           {"Retry-After": str(LIMITED_RETRY_AFTER)})

    def add(self, stream: "EventStream") -> None:
        self._by_user.setdefault(stream.login, set()).add(stream)
        self.served += 1
        self.opened += 1

    def discard(self, stream: "EventStream", reason: str) -> None:
        streams = self._by_user.get(stream.login)
        if streams is None or stream not in streams:
            return
        streams.discard(stream)
        if not streams:
            del self._by_user[stream.login]
        self.served -= 1
        self.ended[reason] += 1

    def hop(self) -> Callable[[], None]:
        """Count a stream relayed to its owner; returns its release (safe to call twice)."""
        self._admit_total()
        self.hops += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.hops -= 1

        return release

    def streams_of(self, login: str) -> int:
        return len(self._by_user.get(login, ()))

    def end_user(self, login: str, reason: str) -> int:
        streams = tuple(self._by_user.get(login, ()))
        for stream in streams:
            stream.finish(reason)
        return len(streams)

    def end_all(self, reason: str) -> int:
        streams = [s for group in self._by_user.values() for s in group]
        for stream in streams:
            stream.finish(reason)
        return len(streams)

    def stop(self) -> int:
        """Server shutdown: end every stream (``shutdown``) and open no new one (503)."""
        self.stopping = True
        return self.end_all(SHUTDOWN)

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) until every stream served here has written its end and closed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.served and loop.time() < deadline:
            await asyncio.sleep(0.02)


class EventStream:
    """One open stream: the bus's sink queues, ``frames`` writes (one coroutine per stream)."""

    __slots__ = ("hub", "login", "accept", "limit", "pending", "end_reason", "last_id", "_wake", "_tick_due",
                 "_wrote", "_timers", "subscription", "closed")

    def __init__(self, hub: StreamHub, login: str, accept: Callable[[str], bool], limit: int) -> None:
        self.hub = hub
        self.login = login
        self.accept = accept
        self.limit = limit
        self.pending: deque[Event] = deque()
        self.end_reason: str | None = None
        self.last_id: int | None = None  # the last id written (what the client resumes from)
        self._wake: asyncio.Future[None] | None = None
        self._tick_due = False
        self._wrote = False
        self._timers: list[asyncio.TimerHandle] = []
        self.subscription: Any = None
        self.closed = False

    # -- called on the event loop by the bus, the hub, the timers: never blocks -------------------
    def deliver(self, event: "Event") -> None:
        """The bus sink."""
        if self.end_reason is not None or not self.accept(event.type):
            return
        if len(self.pending) >= self.limit:
            self.pending.clear()  # they will be replayed from lastId; holding them helps nobody
            self.finish(OVERFLOW)
            return
        self.pending.append(event)
        self._signal()

    def finish(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason
            self._signal()

    def _signal(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _tick(self, loop: asyncio.AbstractEventLoop, every: float) -> None:
        if self.closed:
            return
        self._timers[0] = loop.call_later(every, self._tick, loop, every)
        self._tick_due = True
        self._signal()

    def start_timers(self, heartbeat: float, expires_in: float, max_duration: float) -> None:
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(heartbeat, self._tick, loop, heartbeat))
        self._timers.append(loop.call_later(max(0.0, expires_in), self.finish, TOKEN_EXPIRED))
        if max_duration > 0:
            self._timers.append(loop.call_later(max_duration, self.finish, MAX_DURATION))

    # -- the writer ------------------------------------------------------------------------------
    async def frames(self, opening: bytes, check: Callable[[], Any]) -> AsyncIterator[bytes]:
        """What the response writes: ``opening`` (retry, gap, replay), then events as they come,
        heartbeats, the end. ``check()`` (awaited at each heartbeat tick) returns an end reason
        when the token stopped being valid."""
        loop = asyncio.get_running_loop()
        pending = self.pending
        reason = "closed"
        try:
            yield opening
            while True:
                if not pending and self.end_reason is None and not self._tick_due:
                    wake = self._wake = loop.create_future()
                    try:
                        await wake
                    finally:
                        self._wake = None
                if pending:
                    if len(pending) == 1:
                        event = pending.popleft()
                        chunk = event_frame(event.id, event.type, event.json_bytes())
                    else:
                        events = list(pending)
                        pending.clear()
                        event = events[-1]
                        chunk = b"".join([event_frame(e.id, e.type, e.json_bytes()) for e in events])
                    self.last_id = event.id
                    self._wrote = True
                    yield chunk
                    continue
                if self.end_reason is not None:
                    reason = self.end_reason
                    if reason == MOVED:  # the lease went with a sign-out elsewhere: say that instead
                        reason = (await check()) or reason
                    yield end_frame(reason, self.last_id)
                    return
                if self._tick_due:
                    self._tick_due = False
                    expired = await check()
                    if expired is not None:
                        self.finish(expired)
                        continue
                    if not self._wrote:
                        yield HEARTBEAT
                    self._wrote = False
        finally:
            self.close(reason)

    def close(self, reason: str = "closed") -> None:
        if self.closed:
            return
        self.closed = True
        self.end_reason = self.end_reason or reason
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self.pending.clear()
        subscription, self.subscription = self.subscription, None
        if subscription is not None:
            subscription.close()
        self.hub.discard(self, reason)


def resume_point(request: Request) -> int | None:
    """``Last-Event-ID`` (what an ``EventSource`` sends when it reconnects) wins over ``?since=``
    (the first connection's choice, still in the URL it reconnects to); 400 for anything but an
    id. An empty header is no header (``EventSource`` never sends one; some clients do)."""
    since = [_event_id(value, "since") for value in request.query_params.getlist("since")]  # all checked
    header = request.headers.get("last-event-id")
    if header is not None and header.strip():
        return _event_id(header.strip(), "Last-Event-ID")
    return since[-1] if since else None


def _event_id(text: str, name: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_ID:
        raise ApiError(400, f"bad {name}: expected an event id (digits)")
    return int(text)


def types_pattern() -> str:
    """The regex of what ``TypeFilter.parse`` accepts (``types`` in /openapi.json): comma-separated
    names, ``group.*``, ``*``, each optional and padded with white space."""
    groups = sorted({t.split(".", 1)[0] for t in EVENT_TYPES})
    names = [re.escape(t) for t in EVENT_TYPES] + [re.escape(g) + r"\.\*" for g in groups] + [r"\*"]
    item = r"\s*(" + "|".join(names) + r")?\s*"
    return f"^{item}(,{item})*$"


def type_filter(request: Request) -> Callable[[str], bool]:
    from mxproxy.events.filters import TypeFilter

    values = request.query_params.getlist("types")  # given more than once: all of them
    try:
        return TypeFilter.parse(",".join(values) if values else None)
    except ValueError as exc:
        raise ApiError(400, str(exc) or "bad types") from None


def _token_check(ctx: "ApiContext", token: str) -> Callable[[], Any]:
    async def check() -> str | None:
        try:
            await ctx.tokens.verify(token)
        except InvalidToken as exc:
            text = str(exc)
            if "revoked" in text:
                return SIGNED_OUT
            return TOKEN_EXPIRED if "expired" in text else TOKEN_INVALID
        except StoreError:
            return None  # the store's own checks complain; the stream keeps going
        return None

    return check


async def event_stream(request: Request) -> Response:
    """``GET /events``."""
    ctx = context(request)
    hub, bus, config = ctx.streams, ctx.events, ctx.config.sse
    assert hub is not None and bus is not None, "GET /events is routed only with [sse] enabled"
    token, claims = await current_claims(request)
    login = claims.sub
    if signed_out(request):  # cluster: no instance runs this user, and none will
        raise NotSignedIn()
    try:
        ctx.sessions.get(login)  # 401 when not signed in, 503 + Retry-After while moving or starting
    except SessionUnavailable:
        # reconnecting here: the events will be published here, so the stream opens and waits
        # (an EventSource never retries a non-200 answer, so a 503 would end it for good)
        if not ctx.sessions.runs(login):
            raise
    accept = type_filter(request)
    after = resume_point(request)
    hub.admit(login)
    if request.method == "HEAD":  # what a GET would answer, without the stream
        return Response(status_code=200, media_type=MEDIA_TYPE, headers=STREAM_HEADERS)

    stream = EventStream(hub, login, accept, config.queue_size)
    # subscribing and reading the history in one step (no await between): no event falls between
    # the replay and the live part, and none is in both
    stream.subscription = bus.subscribe(login, stream.deliver, stream.finish)
    try:
        opening = _opening(bus, login, stream, after, config.retry)
    except BaseException:
        stream.close("failed")
        raise
    hub.add(stream)
    stream.start_timers(config.heartbeat, claims.exp - time.time(), config.max_duration)
    return SSEResponse(stream.frames(opening, _token_check(ctx, token)),
                       write_timeout=config.write_timeout, on_close=stream.close)


def _opening(bus: Any, login: str, stream: EventStream, after: int | None, retry: float) -> bytes:
    """``retry:``, the replay after ``after`` (with ``event: gap`` first when the history does not
    reach back to it), and the id the stream starts from. Synchronous: see ``event_stream``."""
    accept = stream.accept
    parts = [retry_frame(retry)]
    newest = bus.last_id(login)
    if newest is None:  # no event yet: start from now (an id 0 would be older than any history: gap)
        newest = bus.ids.now() - 1
    if after is not None:
        replay = bus.history(login, after)
        if replay is None:  # older than the history holds (or from before this owner ran the user)
            parts.append(control_frame("gap", {"after": after}))
            replay = []
        for event in replay:
            if accept(event.type):
                parts.append(event_frame(event.id, event.type, event.json_bytes()))
                stream.last_id = event.id
    resume = max(x for x in (newest, after, stream.last_id) if x is not None)
    if resume != stream.last_id:
        # an id line alone moves an EventSource's lastEventId without an event: a reconnect
        # resumes after what this stream has seen, even when nothing passed the filter
        parts.append(b"id: %d\n\n" % resume)
        stream.last_id = resume
    return b"".join(parts)


__all__ = ["EventStream", "PATH", "StreamHub", "event_stream", "resume_point", "types_pattern"]
