"""``ProxyServer.events``: numbers normalised events per user, keeps a bounded history for
replay and hands every event to its subscribers (SSE streams, the webhook outbox writer).

The bus is a SessionManager listener only while someone needs it (``[events] enabled``, a
feature that called ``require()``, or an open subscription): with an unchanged config it is
never attached and an MX event costs nothing extra.

Cluster: events exist on the user's owner only. When this instance stops owning a user (the
lease moved or lapsed, the user signed out or must sign in again, the server stops) the
manager tells the bus, which closes that user's subscriptions with the reason and drops the
user's history and call state (docs/events.md, "Cluster").
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any, Callable

from mxproxy.config import EventsConfig
from mxproxy.connectors.base import Event as MXEvent
from mxproxy.events.ids import IdClock
from mxproxy.events.model import Event
from mxproxy.events.normalize import HANDLED, Raw, UserNormalizer
from mxproxy.sessions.states import RELEASED_MOVED, RELEASED_NEEDS_REAUTH, RELEASED_SHUTDOWN, RELEASED_SIGNED_OUT

if TYPE_CHECKING:
    from mxproxy.sessions.manager import SessionManager

log = logging.getLogger("mxproxy.events")

Sink = Callable[[Event], None]
CloseCallback = Callable[[str], None]

#: Close reasons (SSE sends them as ``event: end``).
MOVED = RELEASED_MOVED  # another instance owns the user now: reconnect (the API forwards there)
SIGNED_OUT = RELEASED_SIGNED_OUT  # the user signed out, was logged out or dropped by the admin
NEEDS_REAUTH = RELEASED_NEEDS_REAUTH  # the MX refused the stored password: the user must sign in again
SHUTDOWN = RELEASED_SHUTDOWN  # this instance is stopping
CLOSED = "closed"  # the subscriber closed it itself


class Subscription:
    """One subscriber's registration. ``closed_reason`` is None while open; ``on_close`` (if
    given) is called once with the reason when the bus closes it (not when ``close()`` is
    called by the subscriber itself)."""

    __slots__ = ("user", "sink", "on_close", "closed_reason", "_bus")

    def __init__(self, bus: "EventBus", user: str | None, sink: Sink, on_close: CloseCallback | None) -> None:
        self._bus = bus
        self.user = user
        self.sink = sink
        self.on_close = on_close
        self.closed_reason: str | None = None

    @property
    def closed(self) -> bool:
        return self.closed_reason is not None

    def close(self, reason: str = CLOSED) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            self._bus._remove(self)

    def _end(self, reason: str) -> None:
        if self.closed_reason is not None:
            return
        self.close(reason)
        if self.on_close is not None:
            try:
                self.on_close(reason)
            except Exception:  # noqa: BLE001 - one subscriber must not stop the others
                log.exception("event subscription close callback failed")


class _UserState:
    """One user's history and normaliser; ``floor`` is the id before which this bus knows
    nothing of the user (it started watching later, or evicted events up to it)."""

    __slots__ = ("history", "normalizer", "floor")

    def __init__(self, login: str, size: int, floor: int) -> None:
        self.history: deque[Event] = deque(maxlen=size or 1)
        self.normalizer = UserNormalizer(login)
        self.floor = floor


class EventBus:
    def __init__(self, config: EventsConfig | None = None, *, clock: Callable[[], float] = time.time,
                 ids: IdClock | None = None) -> None:
        config = config or EventsConfig()
        self.config = config
        self.history_size = config.history_size
        self.history_age = config.history_age
        self._clock = clock
        self.ids = ids or IdClock()
        self._required: set[str] = {"events"} if config.enabled else set()
        self._users: dict[str, _UserState] = {}
        #: users with history, least recently published first: each publish empties the history
        #: of the user at the head once it is all older than historyAge, so idle users do not
        #: keep historySize events each forever
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._subs: dict[str, set[Subscription]] = {}  # per user
        self._all: set[Subscription] = set()  # user None: every user
        self._manager: SessionManager | None = None
        self._attached = False
        self._since = self.ids.now()  # id scale (µs) of the moment the bus began listening
        self.published = 0
        self.sink_errors = 0

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """Someone asked for events (config or a feature); the bus listens while this holds."""
        return bool(self._required)

    @property
    def attached(self) -> bool:
        return self._attached

    def require(self, feature: str = "events") -> None:
        """A feature (``sse``, ``webhooks``) needs events: listen from now on, whatever
        ``[events] enabled`` says. Call it while wiring, before or after ``bind``."""
        self._required.add(feature)
        self._update_attachment()

    def bind(self, manager: "SessionManager") -> None:
        """Know the session manager; listen to it only while needed."""
        self._manager = manager
        manager.add_release_listener(self._released)
        self._update_attachment()

    def unbind(self) -> None:
        manager, self._manager = self._manager, None
        if manager is not None:
            manager.remove_release_listener(self._released)
            if self._attached:
                manager.remove_listener(self._on_mx_event)
        self._attached = False

    def _wanted(self) -> bool:
        return bool(self._required or self._subs or self._all)

    def _update_attachment(self) -> None:
        manager = self._manager
        if manager is None:
            return
        wanted = self._wanted()
        if wanted and not self._attached:
            manager.add_listener(self._on_mx_event)
            self._attached = True
            self._since = self.ids.now()
            log.info("event bus listening to MX events")
        elif not wanted and self._attached:
            manager.remove_listener(self._on_mx_event)
            self._attached = False
            self._users.clear()  # nobody listened meanwhile: what is kept would have gaps
            self._recent.clear()

    def close(self, reason: str = SHUTDOWN) -> None:
        """Close every subscription (server stop)."""
        for sub in [*self._all, *(s for subs in self._subs.values() for s in subs)]:
            sub._end(reason)
        self.unbind()

    # -- subscribing ------------------------------------------------------------------------
    def subscribe(self, user: str | None, sink: Sink, on_close: CloseCallback | None = None) -> Subscription:
        """``sink(event)`` for every new event of ``user`` (None: of every user this instance
        owns), synchronously on the event loop: it must not block or raise (queue the work)."""
        sub = Subscription(self, user, sink, on_close)
        if user is None:
            self._all.add(sub)
        else:
            self._subs.setdefault(user, set()).add(sub)
        self._update_attachment()
        return sub

    def _remove(self, sub: Subscription) -> None:
        if sub.user is None:
            self._all.discard(sub)
        else:
            subs = self._subs.get(sub.user)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.user]
        self._update_attachment()

    def subscribers(self, user: str | None = None) -> int:
        """Open subscriptions of ``user`` (None: all of them)."""
        if user is None:
            return len(self._all) + sum(len(s) for s in self._subs.values())
        return len(self._subs.get(user, ()))

    # -- history ----------------------------------------------------------------------------
    def history(self, user: str, after: int) -> list[Event] | None:
        """The kept events of ``user`` with an id above ``after``, oldest first; None when events
        after ``after`` may be missing (older than the history holds, or from before this
        instance watched the user): the client must resynchronise (e.g. ``GET /calls``)."""
        state = self._users.get(user)
        floor = state.floor if state is not None else self._floor_for(user)
        if after < floor:
            return None
        if state is None:
            return []
        self._expire(state)
        if after < state.floor:
            return None
        return [e for e in state.history if e.id > after]

    def last_id(self, user: str) -> int | None:
        """The id of the newest event of ``user`` (None: none yet on this instance)."""
        return self.ids.last(user)

    def _floor_for(self, user: str) -> int:
        """The id scale of the moment this bus began seeing ``user``'s events: when it began
        listening or this instance began running the user, whichever is later; now when the
        user is not run here (or nobody listens)."""
        manager = self._manager
        if manager is None:
            return self._since
        owned = manager.owned_since(user)
        if owned is None or not self._attached:
            return self.ids.now()
        return max(self._since, int(owned * 1_000_000))

    def _expire(self, state: _UserState) -> None:
        history = state.history
        if not history:
            return
        oldest_kept = self._clock() - self.history_age
        while history and history[0].time < oldest_kept:
            state.floor = max(state.floor, history.popleft().id)

    def _state(self, user: str) -> _UserState:
        state = self._users.get(user)
        if state is None:
            state = self._users[user] = _UserState(user, self.history_size, self._floor_for(user))
        return state

    # -- publishing -------------------------------------------------------------------------
    def _on_mx_event(self, login: str, event: MXEvent) -> None:
        """SessionManager listener: one raw MX event of ``login``."""
        if type(event) not in HANDLED:
            return
        manager = self._manager
        info = manager.login_info(login) if manager is not None else None
        ext = info.extension if info is not None else ""
        user_id = info.user_id if info is not None else 0
        state = self._state(login)
        for raw in state.normalizer.feed(event, ext, user_id):
            self._publish(state, login, raw)

    def voicemail_read(self, user: str, mail_id: str, media_type: str = "VoiceMail") -> None:
        """The user marked a mail read through the proxy (the MX has no event for it)."""
        if not self._wanted():
            return
        state = self._state(user)
        for raw in state.normalizer.mail_read(mail_id, media_type, self._clock()):
            self._publish(state, user, raw)

    def _publish(self, state: _UserState, user: str, raw: Raw) -> Event:
        kind, data, at, key = raw
        event_id = self.ids.next(user)
        event = Event(id=event_id, type=kind, user=user, time=at, data=data, key=key or f"{kind}:{user}:{event_id}")
        history = state.history
        if self.history_size > 0:
            if len(history) == history.maxlen:
                state.floor = max(state.floor, history[0].id)  # about to be evicted
            history.append(event)
            self._expire(state)
            recent = self._recent
            recent[user] = None
            recent.move_to_end(user)
            self._sweep()
        else:
            state.floor = event.id
        self.published += 1
        for sub in (*self._subs.get(user, ()), *self._all):
            try:
                sub.sink(event)
            except Exception:  # noqa: BLE001 - sinks must not raise; if one does, the rest still get it
                self.sink_errors += 1
                log.exception("event sink failed for %s", user)
        return event

    def _sweep(self) -> None:
        """Empty the history of the least recently published user if it has all expired."""
        recent = self._recent
        oldest = next(iter(recent))
        state = self._users.get(oldest)
        if state is None:
            del recent[oldest]
            return
        self._expire(state)
        if not state.history:
            del recent[oldest]

    # -- ownership ---------------------------------------------------------------------------
    def _released(self, login: str, reason: str) -> None:
        """SessionManager: this instance no longer runs ``login`` (see the module doc)."""
        self.end_user(login, reason)

    def end_user(self, user: str, reason: str) -> None:
        """Close ``user``'s subscriptions with ``reason`` and forget their history and calls."""
        for sub in list(self._subs.get(user, ())):
            sub._end(reason)
        self._users.pop(user, None)
        self._recent.pop(user, None)
        self.ids.forget(user)

    def describe(self) -> dict[str, Any]:
        """For the admin: what the bus holds."""
        return {"attached": self._attached, "users": len(self._users), "subscriptions": self.subscribers(),
                "published": self.published, "sinkErrors": self.sink_errors}

    def stats(self) -> dict[str, float]:
        """For ``/metrics`` (``Metrics.watch_events``)."""
        return {"users": len(self._users), "subscriptions": self.subscribers(), "published": self.published,
                "sink_errors": self.sink_errors}
