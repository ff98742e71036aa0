"""The push dispatcher: MX session events → the policy → every device of the user → APNs / FCM.

It sits *beside* the MX sessions, never in their way: the session listener only puts the event in
a bounded queue (full → the push is dropped and counted, the session never waits). Worker tasks
take events in arrival order, drop repeats of an event already pushed moments ago (a reconnect
must not ring a phone twice), ask the policy for the push, look up the user's device tokens and
send through the sender of each token's kind, at most ``[push] concurrency`` sends at a time.

Every answer updates the token's last result in the store; a provider's *final* verdict deletes
the token, unless the prune guard has stopped deletions for that topic because most of its users'
tokens were rejected at once (that smells of a wrong certificate or environment, not of a hundred
simultaneous uninstalls). See docs/push.md, "Dispatcher".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from mxproxy.config import Config
from mxproxy.connectors.base import (
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
from mxproxy.eventjson import PUSHED_TYPES, event_json, event_type
from mxproxy.metrics import Metrics
from mxproxy.push.apns import ApnsSender
from mxproxy.push.fcm import FcmSender
from mxproxy.push.policy import PushMessage, PushPolicy
from mxproxy.push.results import REJECTED, TRANSPORT, PushResult, Sender
from mxproxy.push.topics import PushTopics
from mxproxy.sessions import SessionManager
from mxproxy.store.base import DeviceToken, Store, StoreError

log = logging.getLogger(__name__)

KINDS = ("voip", "alert")

#: A repeat of the event last seen for the same call (or mail) within this many seconds is not
#: pushed again (the length of a ring's useful life: ``callExpiration``'s default).
DUPLICATE_WINDOW = 30.0
DUPLICATE_MEMORY = 50_000  # (login, call/mail) keys remembered at most
#: ``json.dumps(body, sort_keys=True, separators=(",", ":"))`` without building an encoder per call
_FINGERPRINT = json.JSONEncoder(sort_keys=True, separators=(",", ":"))

#: Prune guard: within GUARD_WINDOW seconds, when at least GUARD_MIN_USERS distinct users of one
#: (provider, topic) got a suspicious final verdict and they are more than GUARD_SHARE of the
#: users that topic answered for, token deletion for that topic stops.
GUARD_WINDOW = 300.0
GUARD_MIN_USERS = 5
GUARD_SHARE = 0.5
GUARD_MEMORY = 20_000  # answers remembered per topic at most
#: Final verdicts that say "the token does not fit this credential" – many at once means our
#: side is wrong (environment, bundle, project). APNs ``Unregistered``/410 is Apple saying the app
#: was removed from that device: a normal uninstall, never counted.
GUARD_REASONS: dict[str, frozenset[str]] = {
    "apns": frozenset({"BadDeviceToken", "DeviceTokenNotForTopic", "MissingDeviceToken"}),
    "fcm": frozenset({"UNREGISTERED", "INVALID_ARGUMENT"}),
}

DROP_LOG_INTERVAL = 10.0
#: A token's stored result is rewritten when it changes, or when the stored one is older than
#: this: at hundreds of pushes a second, one store write per push would cost a fifth of a core.
RESULT_REFRESH = 60.0
RESULT_MEMORY = 100_000  # tokens whose last written result is remembered
#: Tasks taking events off the queue. They only consult the policy and read the user's tokens;
#: the sends run as tasks of their own, so a few are plenty.
EVENT_WORKERS = 8
CLOSE_GRACE = 2.0  # seconds aclose() lets queued pushes finish


@dataclass(frozen=True)
class _Job:
    login: str
    event: Event
    received: float  # time.monotonic() when the listener saw it


# ----------------------------------------------------------------------------------------------
# duplicates across reconnects
# ----------------------------------------------------------------------------------------------


class DuplicateFilter:
    """Remembers, per user and call (or mail id), the last event seen and when. The same event
    again (same JSON except ``timestamp``) within the window is a duplicate. Only the *last*
    event per call is compared, so hold → retrieve → hold is three pushes, while a ring that a
    reconnected session reports again is one."""

    def __init__(self, window: float = DUPLICATE_WINDOW, memory: int = DUPLICATE_MEMORY) -> None:
        self.window = window
        self.memory = memory
        self._last: OrderedDict[tuple[str, str, Any], tuple[str, float]] = OrderedDict()

    @staticmethod
    def identity(login: str, event: Event) -> tuple[tuple[str, str, Any], str] | None:
        """``((login, "call"|"mail", id), fingerprint)`` of a pushable event, else None. The
        fingerprint is also what cluster push claims compare across instances: keep its form."""
        body = event_json(event)
        if body is None:
            return None
        body.pop("timestamp", None)
        fingerprint = _FINGERPRINT.encode(body)
        if isinstance(event, MailIncomingReady):
            return (login, "mail", event.mail_id), fingerprint
        return (login, "call", getattr(event, "call_id", None)), fingerprint

    def seen(self, login: str, event: Event, now: float) -> bool:
        return self.seen_identity(self.identity(login, event), now)

    def seen_identity(self, found: tuple[tuple[str, str, Any], str] | None, now: float) -> bool:
        """``seen`` for an event whose ``identity`` the caller has already."""
        if found is None:
            return False
        key, fingerprint = found
        previous = self._last.get(key)
        if previous is not None and previous[0] == fingerprint and now - previous[1] < self.window:
            return True
        self._last[key] = (fingerprint, now)
        self._last.move_to_end(key)
        while self._last and (len(self._last) > self.memory or now - next(iter(self._last.values()))[1] >= self.window):
            self._last.popitem(last=False)
        return False


# ----------------------------------------------------------------------------------------------
# the prune guard
# ----------------------------------------------------------------------------------------------


@dataclass
class _GuardWindow:
    """One (provider, topic)'s answers in the window, with per-user counts kept up to date as
    answers enter and leave it, so each answer costs O(1) however busy the topic is."""

    answers: deque[tuple[float, str, str]] = field(default_factory=deque)  # (time, login, outcome)
    per_user: Counter[str] = field(default_factory=Counter)  # answers per login
    suspect: Counter[str] = field(default_factory=Counter)  # "suspect" answers per login
    ok: Counter[str] = field(default_factory=Counter)  # "ok" answers per login
    since: float | None = None  # wall clock when tripped

    def add(self, answer: tuple[float, str, str]) -> None:
        self.answers.append(answer)
        self._count(answer, +1)

    def drop_oldest(self) -> None:
        self._count(self.answers.popleft(), -1)

    def _count(self, answer: tuple[float, str, str], step: int) -> None:
        _, login, outcome = answer
        counters = [self.per_user]
        if outcome == "suspect":
            counters.append(self.suspect)
        elif outcome == "ok":
            counters.append(self.ok)
        for counter in counters:
            counter[login] += step
            if counter[login] <= 0:
                del counter[login]


class PruneGuard:
    """Stops token deletion for a (provider, topic) when most of its users fail at once.

    Counted per *user*, not per token: one user with six stale tokens from old installs is one
    failing user, so ordinary uninstalls do not trip it. Trips when ≥ ``min_users`` users got a
    suspicious final verdict in the window and they are > ``share`` of the users answered for;
    clears when ≥ ``min_users`` users got ``ok`` in the window and the failing share is back at or
    below ``share`` (so a quiet period does not silently re-enable deletion)."""

    def __init__(self, window: float = GUARD_WINDOW, min_users: int = GUARD_MIN_USERS, share: float = GUARD_SHARE,
                 memory: int = GUARD_MEMORY) -> None:
        self.window = window
        self.min_users = min_users
        self.share = share
        self.memory = memory
        self._topics: dict[tuple[str, str], _GuardWindow] = {}

    def observe(self, result: PushResult, now: float) -> tuple[bool, bool | None]:
        """Record one answered send. Returns (pruning allowed for its topic, change) where change
        is True when the guard just tripped, False when it just cleared, None otherwise."""
        key = (result.provider, result.token.topic)
        state = self._topics.get(key)
        if result.http_status is None:  # no answer from the provider: says nothing about tokens
            return (state is None or state.since is None), None
        if state is None:
            state = self._topics[key] = _GuardWindow()
        if result.ok:
            outcome = "ok"
        elif result.final and result.reason in GUARD_REASONS.get(result.provider, frozenset()):
            outcome = "suspect"
        else:
            outcome = "other"
        if len(state.answers) >= self.memory:
            state.drop_oldest()
        state.add((now, result.token.login, outcome))
        while state.answers and now - state.answers[0][0] > self.window:
            state.drop_oldest()
        users, failing, fine = len(state.per_user), len(state.suspect), len(state.ok)
        too_many = failing >= self.min_users and failing > self.share * users
        change: bool | None = None
        if state.since is None and too_many:
            state.since = time.time()
            change = True
        elif state.since is not None and not too_many and fine >= self.min_users and failing <= self.share * users:
            state.since = None
            change = False
        return state.since is None, change

    def active(self) -> list[dict[str, Any]]:
        return [
            {"provider": provider, "topic": topic,
             "since": dt.datetime.fromtimestamp(state.since, dt.timezone.utc).isoformat().replace("+00:00", "Z")}
            for (provider, topic), state in sorted(self._topics.items())
            if state.since is not None
        ]


# ----------------------------------------------------------------------------------------------
# sample events for the admin's test pushes
# ----------------------------------------------------------------------------------------------

_CALLER, _CALLER_NAME, _CALL_ID, _GCID = "3044", "Peter Hyde", 21, "2809269720623105293"


def sample_event(type_name: str, ext: str, user_id: int = 0) -> Event:
    """A realistic event of a pushed type ringing/arriving at ``ext`` (ValueError if unknown)."""
    names = {t.lower(): t for t in PUSHED_TYPES}
    name = names.get(type_name.strip().lower())
    if name is None:
        raise ValueError(f"unknown event type {type_name!r} (known: {', '.join(PUSHED_TYPES)})")
    call = dict(call_id=_CALL_ID, device_id=ext, global_call_id=_GCID, cause="normal")
    if name == "Delivered":
        return Delivered(**call, local_connection_info="alerting", call_type_flags=170917889,
                         calling_device=_CALLER, calling_display_name=_CALLER_NAME,
                         called_device=ext, alerting_device=ext)
    if name == "Established":
        return Established(**call, answering_device=ext, calling_device=_CALLER, calling_display_name=_CALLER_NAME,
                           called_device=ext, call_type_flags=170917889)
    if name == "Originated":
        return Originated(**call, calling_device=ext, called_device=_CALLER)
    if name == "ConnectionCleared":
        return ConnectionCleared(**call, releasing_device=_CALLER)
    if name == "HeldEvent":
        return Held(**call, holding_device=ext)
    if name == "RetrievedEvent":
        return Retrieved(**call, retrieving_device=ext)
    if name == "RecordingState":
        return RecordingState(call_id=_CALL_ID, device_id=ext, available=True, active=True)
    return MailIncomingReady(mail_id="117", media_type="VoiceMail", sender=_CALLER, from_name=_CALLER_NAME,
                             caller_name=_CALLER_NAME, to=ext, owner_id=user_id, owner_type="user",
                             gcid="63022-00-0000D-47A", received=int(time.time()), duration=7)


# ----------------------------------------------------------------------------------------------
# the dispatcher
# ----------------------------------------------------------------------------------------------


class PushDispatcher:
    """See the module docstring; the public methods are the interface the server and admin use."""

    def __init__(
        self,
        config: Config,
        store: Store,
        sessions: SessionManager,
        senders: dict[str, Sender],
        *,
        metrics: Metrics | None = None,
        apns: ApnsSender | None = None,
        fcm: FcmSender | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.sessions = sessions
        self.metrics = metrics or Metrics()
        self.policy = PushPolicy.from_config(config.push)
        self.senders = senders  # token kind ("apn" | "fcm") -> sender
        self.apns = apns
        self.fcm = fcm
        self.topics = PushTopics.of(apn=apns.topics if apns else (), fcm=fcm.app_ids if fcm else ())
        self.duplicates = DuplicateFilter()
        self.guard = PruneGuard()
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=config.push.queue_size)
        # one pool of send slots per token kind: a slow FCM never holds up APNs, nor the reverse
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._backlog: Counter[str] = Counter()  # sends started or waiting for a slot, per token kind
        self._sends: set[asyncio.Task[PushResult]] = set()
        self._markers: set[asyncio.Task[Any]] = set()  # cluster: marking claims sent, resending
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight = 0
        self._started = False
        self._exts: dict[str, str] = {}
        self._written: OrderedDict[tuple[str, str, str], tuple[str, float]] = OrderedDict()
        self._fcm_used: set[str] = set()
        self._counts: Counter[tuple[str, str]] = Counter()  # (provider, status) -> n
        # labelled metric children, found once per label set (``labels()`` takes a lock and
        # builds its key on every call): bounded by providers × kinds × statuses × warm/cold
        self._sent_counters: dict[tuple[str, str, str], Any] = {}
        self._latency_histograms: dict[tuple[str, str], Any] = {}
        self._stats: Counter[str] = Counter()  # dropped, duplicates, pruned, pruneHeld, ...
        self._dropped_since_log = 0
        self._last_drop_log = 0.0

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Register the session listener and start the workers; connections open on first use."""
        if self._started:
            return
        self._started = True
        self._export_certificates()
        self._workers = [
            asyncio.create_task(self._work(), name=f"push-worker-{n}") for n in range(EVENT_WORKERS)
        ]
        self.sessions.add_listener(self.on_event)
        ownership = getattr(self.sessions, "ownership", None)
        if ownership is not None:
            ownership.resend = self._resend  # claims a dead owner made and never sent
        log.info("push dispatcher: %d APNs topics, %d FCM apps, preset %s",
                 len(self.topics.apn), len(self.topics.fcm), self.policy.preset)

    async def aclose(self) -> None:
        """Stop listening, give queued pushes a moment (``CLOSE_GRACE``), stop the workers, close
        the senders."""
        self.sessions.remove_listener(self.on_event)
        if self._workers and (self._queue.qsize() or self._sends):
            try:
                await self.drain(CLOSE_GRACE)
            except TimeoutError:
                log.warning("push: %d queued event(s) and %d send(s) abandoned at shutdown",
                            self._queue.qsize(), len(self._sends))
        for task in [*self._workers, *self._sends, *self._markers]:
            task.cancel()
        await asyncio.gather(*self._workers, *self._sends, *self._markers, return_exceptions=True)
        self._workers = []
        self._started = False
        for sender in {id(s): s for s in self.senders.values()}.values():
            try:
                await sender.aclose()
            except Exception:  # noqa: BLE001 - closing is best effort
                log.exception("closing the %s sender failed", sender.provider)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued event has been handled and its sends answered."""
        async with asyncio.timeout(timeout):
            await self._queue.join()  # after this, every send of those events has been started
            while self._sends or self._markers:
                await asyncio.gather(*tuple(self._sends), *tuple(self._markers), return_exceptions=True)

    # -- the session listener (must never block) -------------------------------------------------
    def on_event(self, login: str, event: Event) -> None:
        if event_type(event) is None:  # presence, diverted, session end…: never pushed
            return
        try:
            self._queue.put_nowait(_Job(login, event, time.monotonic()))
        except asyncio.QueueFull:
            self._drop(login, "queue_full")
        self.metrics.push_queue.set(self._queue.qsize())

    def _drop(self, login: str, reason: str) -> None:
        """``queue_full``: the event queue; ``provider_backlog``: one provider's pending sends."""
        self.metrics.push_dropped.labels(reason=reason).inc()
        self._stats["dropped"] += 1
        self._dropped_since_log += 1
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL:
            log.warning("push %s (limit %d): dropped %d push(es), latest for %s",
                        reason.replace("_", " "), self._queue.maxsize, self._dropped_since_log, login)
            self._dropped_since_log = 0
            self._last_drop_log = now

    # -- workers ---------------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                self.metrics.push_queue.set(self._queue.qsize())
                found = DuplicateFilter.identity(job.login, job.event)  # once per event
                message = self._message(job, found)  # synchronous: events reach the policy in arrival order
                if message is not None:
                    push, claim = await self._claimed(job, message, found)
                    if push:
                        await self._deliver(job.login, message, job.received, claim)  # starts the sends
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one bad event must not stop the worker
                log.exception("push for %s failed", job.login)
            finally:
                self._queue.task_done()

    def _message(self, job: _Job, found: tuple[tuple[str, str, Any], str] | None) -> PushMessage | None:
        if self.duplicates.seen_identity(found, job.received):
            self._stats["duplicates"] += 1
            log.info("push: %s for %s seen moments ago (reconnect?); not pushed again",
                     event_type(job.event), job.login)
            return None
        return self.policy.message(job.event, login=job.login, ext=self._ext(job.login))

    async def _claimed(self, job: _Job, message: PushMessage,
                       found: tuple[tuple[str, str, Any], str] | None) -> tuple[bool, tuple[str, int] | None]:
        """Cluster: one push per event across all instances, only by the lease holder (fenced in
        the store); a single instance's filter above already decided. The claim records the
        message, so a new owner can send it if this process dies before ``push_sent``.
        ``found``: the event's ``DuplicateFilter.identity``."""
        ownership = self.sessions.ownership
        if found is None or ownership is None:
            return True, None
        (_, kind, item), fingerprint = found
        record = json.dumps({"type": message.event_type, "kind": message.kind, "payload": message.payload},
                            separators=(",", ":"), default=str)
        try:
            epoch = await ownership.claim_push(job.login, f"{kind}:{item}", fingerprint, message=record)
        except StoreError as exc:
            self._stats["storeErrors"] += 1
            # nobody can take a lease from us while the store is down: push if ours is still valid
            held = self.sessions.ownership.holds(job.login)
            log.warning("push: cannot claim %s for %s in the store (%s); %s", event_type(job.event), job.login,
                        exc, "pushing on the valid lease" if held else "not pushed (lease lapsed)")
            return held, None
        if epoch is None:
            self._stats["duplicates"] += 1
            log.info("push: %s for %s claimed by another instance or lease lost; not pushed",
                     event_type(job.event), job.login)
            return False, None
        return True, (f"{kind}:{item}", epoch)

    def _ext(self, login: str) -> str:
        """The user's extension from their MX login info (kept when the session is gone)."""
        info = self.sessions.login_info(login)  # not ``describe``: that builds the admin view per event
        ext = str(info.extension or "") if info is not None else ""
        if ext:
            self._exts[login] = ext
            return ext
        return self._exts.get(login, "")

    async def _deliver(self, login: str, message: PushMessage, started: float,
                       claim: tuple[str, int] | None = None) -> None:
        try:
            tokens = await self.store.tokens_for_user(login)
        except StoreError as exc:
            log.error("push for %s: cannot read device tokens: %s", login, exc)
            self._stats["storeErrors"] += 1
            return
        ownership = self.sessions.ownership
        if claim is not None and ownership is not None and not ownership.may_push(login):
            # paused past the lease between claim and send: the new owner sends the claim
            self._stats["fenced"] += 1
            log.warning("push: lease of %s lapsed between claim and send; left to its new owner", login)
            return
        sends = [task for token in tokens if (task := self._spawn(token, message.payload, message.kind, started))]
        if claim is not None and ownership is not None:
            marker = asyncio.create_task(self._mark_sent(ownership, login, claim, sends))
            self._markers.add(marker)
            marker.add_done_callback(self._markers.discard)

    async def _mark_sent(self, ownership: Any, login: str, claim: tuple[str, int], sends: list[asyncio.Task[Any]]) -> None:
        """Phase two of a cluster claim, once every send of it was made (whatever the answer)."""
        if sends:
            await asyncio.gather(*sends, return_exceptions=True)
            if any(task.cancelled() for task in sends):
                return  # abandoned at shutdown: not sent, the claim stays open for the next owner
        try:
            await ownership.push_sent(login, *claim)
        except StoreError as exc:  # the claim stays unsent: a takeover after a crash would resend it
            log.warning("push: cannot mark the push for %s sent: %s", login, exc)

    def _resend(self, login: str, item: str, record: str, epoch: int) -> None:
        """A claim of ``login`` whose claimer died before sending became ours: send it."""
        try:
            data = json.loads(record)
            message = PushMessage(event_type=str(data["type"]), kind=str(data["kind"]), payload=dict(data["payload"]))
        except (ValueError, KeyError, TypeError):
            log.error("push: a claimed push of %s in the store cannot be read; not resent", login)
            return
        self._stats["resent"] += 1
        log.warning("push: %s for %s was claimed by an instance that died before sending it; sending it now",
                    message.event_type, login)
        task = asyncio.create_task(self._deliver(login, message, time.monotonic(), (item, epoch)))
        self._markers.add(task)
        task.add_done_callback(self._markers.discard)

    def _spawn(self, token: DeviceToken, payload: dict, kind: str, started: float) -> asyncio.Task[PushResult] | None:
        """Start one send as its own task, unless that provider already has ``queueSize`` pending."""
        if self._backlog[token.kind] >= self.config.push.queue_size:
            self._drop(token.login, "provider_backlog")
            return None
        self._backlog[token.kind] += 1
        task = asyncio.create_task(self._send(token, payload, kind, started))
        self._sends.add(task)

        def finished(done: asyncio.Task[PushResult]) -> None:
            self._sends.discard(done)
            self._backlog[token.kind] -= 1
            if not done.cancelled() and done.exception() is not None:
                log.error("push to a %s token of %s failed", token.kind, token.login, exc_info=done.exception())

        task.add_done_callback(finished)
        return task

    # -- sending ---------------------------------------------------------------------------------
    def _budget(self, kind: str) -> float:
        return self.config.push.call_deadline if kind == "voip" else self.config.push.alert_deadline

    async def _send(self, token: DeviceToken, payload: dict, kind: str, started: float) -> PushResult:
        sender = self.senders.get(token.kind)
        slots = self._slots.get(token.kind)
        if slots is None:
            slots = self._slots[token.kind] = asyncio.Semaphore(self.config.push.concurrency)
        async with slots:
            self._in_flight += 1
            try:
                if sender is None:
                    result = PushResult(token.kind, kind, token, REJECTED, reason=f"unknown token kind {token.kind!r}",
                                        attempts=0)
                else:
                    deadline = time.monotonic() + self._budget(kind)
                    try:
                        result = await sender.send(token, payload, kind, deadline=deadline)  # type: ignore[arg-type]
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - senders should not raise; never lose the worker
                        log.exception("%s sender raised", sender.provider)
                        result = PushResult(sender.provider, kind, token, TRANSPORT, reason=type(exc).__name__)
            finally:
                self._in_flight -= 1
        await self._record(result, started)
        return result

    async def _record(self, result: PushResult, started: float) -> None:
        token = result.token
        labels = (result.provider, result.kind, result.status)
        counter = self._sent_counters.get(labels)
        if counter is None:
            counter = self._sent_counters[labels] = self.metrics.pushes.labels(*labels)
        counter.inc()
        self._counts[(result.provider, result.status)] += 1
        if result.attempts > 0:
            where = (result.provider, self._connection(result))
            histogram = self._latency_histograms.get(where)
            if histogram is None:
                histogram = self._latency_histograms[where] = self.metrics.push_latency.labels(*where)
            histogram.observe(time.monotonic() - started)
        await self._store_result(result)
        allowed, change = self.guard.observe(result, time.monotonic())
        if change is not None:
            self._guard_changed(result.provider, token.topic, change)
        if not result.final:
            return
        if not allowed:
            self._stats["pruneHeld"] += 1
            log.info("push: %s token %s… of %s rejected (%s) but kept: prune guard active for %s",
                     result.provider, token.token[:8], token.login, result.reason, token.topic)
            return
        try:
            deleted = await self.store.delete_token(token.kind, token.topic, token.token, login=token.login)
        except StoreError as exc:
            log.warning("push: cannot delete a dead %s token: %s", token.kind, exc)
            return
        if deleted:
            self.metrics.push_tokens_pruned.labels(provider=result.provider).inc()
            self._stats["pruned"] += 1
            log.info("push: %s token %s… of %s deleted (%s)", result.provider, token.token[:8], token.login,
                     result.reason)

    async def _store_result(self, result: PushResult) -> None:
        """``set_token_result`` when the result changed or the stored one is ``RESULT_REFRESH`` old."""
        token = result.token
        key = (token.kind, token.topic, token.token)
        summary, now = result.summary(), time.monotonic()
        written = self._written.get(key)
        if written is not None and written[0] == summary and now - written[1] < RESULT_REFRESH:
            return
        try:
            await self.store.set_token_result(token.kind, token.topic, token.token, summary, time.time())
        except StoreError as exc:
            log.warning("push: cannot store the result for a %s token: %s", token.kind, exc)
            return
        self._written[key] = (summary, now)
        self._written.move_to_end(key)
        while len(self._written) > RESULT_MEMORY:
            self._written.popitem(last=False)

    def _connection(self, result: PushResult) -> str:
        """warm | cold: APNs says whether a connection was open; FCM's first send per app is cold."""
        if result.warm is not None:
            return "warm" if result.warm else "cold"
        key = f"{result.provider}:{result.token.topic}"
        if key in self._fcm_used:
            return "warm"
        self._fcm_used.add(key)
        return "cold"

    def _guard_changed(self, provider: str, topic: str, tripped: bool) -> None:
        self.metrics.push_prune_guard.labels(provider=provider, topic=topic).set(1 if tripped else 0)
        if tripped:
            log.error(
                "push: most %s tokens of %s were rejected within %.0f minutes (BadDeviceToken-like verdicts "
                "for %d+ users): token deletion for this topic is suspended. Check the certificate/key, the "
                "sandbox/production environment and the bundle or project id.",
                provider, topic, GUARD_WINDOW / 60, GUARD_MIN_USERS,
            )
        else:
            log.warning("push: %s tokens of %s are accepted again; token deletion resumed", provider, topic)

    # -- admin -----------------------------------------------------------------------------------
    async def push_to_user(self, login: str, payload: dict, kind: str) -> list[PushResult]:
        """Push ``payload`` to every device of ``login`` and wait for the answers."""
        _check_kind(kind)
        started = time.monotonic()
        tokens = await self.store.tokens_for_user(login)
        return list(await asyncio.gather(*(self._send(t, payload, kind, started) for t in tokens)))

    async def push_to_token(self, token: DeviceToken, payload: dict, kind: str) -> PushResult:
        _check_kind(kind)
        return await self._send(token, payload, kind, time.monotonic())

    def test_payload(self, event_type: str, login: str) -> dict:
        """The payload the policy would build for a realistic ``event_type`` of ``login``.

        Types the policy does not push (``none``) give the plain event JSON."""
        ext, user_id = self._identity(login)
        event = sample_event(event_type, ext, user_id)
        policy = PushPolicy(self.policy.preset, self.config.push.events)  # a scratch one: no ring memory touched
        if isinstance(event, ConnectionCleared):
            policy.message(sample_event("Delivered", ext, user_id), login=login, ext=ext)  # the ring it cancels
        message = policy.message(event, login=login, ext=ext)
        if message is not None:
            return message.payload
        body = event_json(event)
        assert body is not None
        return body

    def _identity(self, login: str) -> tuple[str, int]:
        try:
            info = self.sessions.get(login).info
            return info.extension, info.user_id
        except Exception:  # noqa: BLE001 - not live: fall back to what we know
            return self._ext(login), 0

    def status(self) -> dict:
        sent: dict[str, Any] = {}
        for (provider, status), n in sorted(self._counts.items()):
            sent.setdefault(provider, {})[status] = n
        for name in ("dropped", "duplicates", "pruned", "pruneHeld", "storeErrors"):
            sent[name] = self._stats[name]
        return {
            "queued": self._queue.qsize(),
            "inFlight": self._in_flight,
            "pending": dict(sorted((kind, n) for kind, n in self._backlog.items() if n)),
            "pruneGuard": self.guard.active(),
            "apnsCertificates": self._certificates(),
            "credentialProblems": self.credential_problems(),
            "fcmLegacyKeys": sorted(self.fcm.legacy) if self.fcm else [],
            "sent": sent,
        }

    def credential_problems(self) -> list[str]:
        """Every ``[voip]`` credential (.p12, .p8, service-account JSON) that failed to load,
        with the key and the reason (never a password): those pushes cannot be sent."""
        return [p for sender in (self.apns, self.fcm) if sender is not None for p in sender.problems]

    def ready_problems(self) -> list[str]:
        problems = [
            f"push: token deletion suspended for {g['provider']} topic {g['topic']} since {g['since']} "
            "(most of its tokens were rejected at once)"
            for g in self.guard.active()
        ]
        if self._started and any(t.done() for t in self._workers):
            problems.append("push: dispatcher workers stopped")
        problems += [f"push: credential not loaded: {p}" for p in self.credential_problems()]
        return problems  # a full queue is in metrics/status: readiness would not help (MX events fill it)

    def ready_warnings(self) -> list[str]:
        """What /readyz lists without turning not-ready: taking the instance out of service would
        silence every other device as well."""
        return [f"push: FCM app {app} has a legacy server key: nothing is sent to FCM for it"
                for app in sorted(self.fcm.legacy)] if self.fcm else []

    # -- certificates ----------------------------------------------------------------------------
    def _certificates(self) -> list[dict[str, Any]]:
        now = dt.datetime.now(dt.timezone.utc)
        out: list[dict[str, Any]] = []
        for cert in self.apns.certificates if self.apns else ():
            for topic, sandbox in sorted(cert.topics):
                out.append({
                    "topic": topic,
                    "sandbox": sandbox,
                    "file": cert.path,
                    "notAfter": cert.not_valid_after.isoformat().replace("+00:00", "Z"),
                    "daysLeft": cert.expires_in(now).days,
                })
        return out

    def _export_certificates(self) -> None:
        """apns_certificate_expiry{topic,file} = notAfter; the loader already warned (< 30 days)."""
        for cert in self.apns.certificates if self.apns else ():
            self.metrics.apns_certificate_expiry.labels(topic=cert.bundle_id, file=cert.path).set(
                cert.not_valid_after.timestamp()
            )


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"push kind must be one of {', '.join(KINDS)}, got {kind!r}")


def create_dispatcher(config: Config, store: Store, sessions: SessionManager, *,
                      metrics: Metrics | None = None) -> PushDispatcher:
    """Load the push credentials (``[voip]``) and build the dispatcher; ``start()`` wires it."""
    apns = ApnsSender(config.voip, config.push, config.base_dir)
    fcm = FcmSender(config.voip, config.push, config.base_dir)
    return PushDispatcher(config, store, sessions, {"apn": apns, "fcm": fcm}, metrics=metrics, apns=apns, fcm=fcm)


__all__ = ["PushDispatcher", "create_dispatcher", "DuplicateFilter", "PruneGuard", "sample_event"]
