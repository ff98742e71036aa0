"""The user session manager: exactly one owner task per MX login.

The owner task is the only thing that decides a user's MX session is gone. It logs in, starts the
monitor (and checks it), consumes the session's events (call-info cache, recordings list, fan-out
to listeners), and reconnects with exponential backoff and jitter. It fixes the original's
connection lifecycle bugs (spec §9 items 5, 6, 13–16, 26):

* while reconnecting, ``get`` raises ``SessionUnavailable`` (503 + Retry-After), not a 401;
* ``sign_in`` during a reconnect joins the owner's next attempt instead of opening a second session;
* a different password for a live session is verified by a fresh MX login, never silently reused;
* all stored users resume concurrently at start (bounded), failures go to backoff;
* ``loginFailed`` on a reconnect marks the user ``needs_reauth`` instead of deleting them;
* a forced logout by the MX is not fought with an immediate reconnect (long delay or a new sign-in);
* ``logout`` deletes the user and their device tokens.

API handlers only borrow sessions (``get``); MX operation timeouts are their business.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from mxproxy.callcache import DEFAULT_CALL_TTL, CallInfoCache
from mxproxy.config import Config
from mxproxy.connectors.base import (
    AddressBookChanged,
    CallLogEntry,
    ConnectionCleared,
    Connector,
    Contact,
    Diverted,
    Event,
    Failed,
    LoginInfo,
    MXAccount,
    MXSession,
    SessionEnded,
    Transferred,
)
from mxproxy.connectors.errors import MXError, MXLoginFailed, MXTimeout, MXUnsupported
from mxproxy.fetch_cache import KeyedSharedFetch, SharedFetch
from mxproxy.provisioning import ProvisionedAccount, split_host
from mxproxy.recordings import RecordingList
from mxproxy.store.base import Store, StoreError, UserRecord

log = logging.getLogger(__name__)

Listener = Callable[[str, Event], None]
R = TypeVar("R")

DEFAULT_DIRECTORY_TTL = 60.0
DEFAULT_CALL_LOG_TTL = 30.0
CALL_LOG_KEYS = 4  # distinct ``since`` values cached per user (apps ask for "all" or "since X")
# Events after which the user's call log may hold a new record: the end of one of their call legs
# (hang-up, a call diverted away unanswered, a failed call, a transfer handing the call on). The
# protocol has no call-log change event (spec §4.3, §5).
CALL_LOG_EVENTS = (ConnectionCleared, Diverted, Failed, Transferred)
# The MX may write the record just after it sends the event: invalidate once more after this.
CALL_LOG_SETTLE = 2.0

DirectoryCache = SharedFetch[list[Contact]]
CallLogCache = KeyedSharedFetch[int | None, list[CallLogEntry]]

LIVE = "live"
RECONNECTING = "reconnecting"
FORCED_LOGOUT = "forced_logout"
NEEDS_REAUTH = "needs_reauth"
ABSENT = "absent"


class SessionUnavailable(Exception):
    """The user is known but their MX session is (re)connecting: the API answers 503 + Retry-After."""

    def __init__(self, retry_after: int, message: str = "mx connection is reconnecting") -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
        self.message = message


class NotSignedIn(Exception):
    """No such user, logged out, or their stored password was rejected: the API answers 401."""

    def __init__(self, message: str = "active mx connection unavailable") -> None:
        super().__init__(message)
        self.message = message


# ----------------------------------------------------------------------------------------------
# options and stats
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionOptions:
    """Timings of the owner tasks; from ``[mx]`` (see ``from_config``) or given directly in tests."""

    reconnect_min: float = 1.0  # first delay after a drop; doubles per failed attempt
    reconnect_max: float = 60.0  # cap of the exponential backoff
    jitter: float = 0.2  # each delay is multiplied by uniform(1 - jitter, 1)
    forced_logout_delay: float = 300.0  # wait after the MX forced us out (or until a new sign-in)
    call_ttl: float = DEFAULT_CALL_TTL
    directory_ttl: float = DEFAULT_DIRECTORY_TTL
    call_log_ttl: float = DEFAULT_CALL_LOG_TTL
    resume_concurrency: int = 100  # MX logins running at once (start-up resume and reconnect storms)
    resume_wait: float = 5.0  # how long start() waits for first attempts before returning anyway
    sign_in_wait: float | None = None  # how long a joining sign-in waits (None: derived)
    stop_timeout: float = 5.0  # bound on the <logout/> round at stop()

    @classmethod
    def from_config(cls, config: Config) -> "SessionOptions":
        """The ``[mx]`` session timings (typed and checked by the config parser)."""
        mx = config.mx
        attempt = mx.connect_timeout + 2 * mx.response_timeout + 1.0
        return cls(
            reconnect_min=mx.reconnect_min,
            reconnect_max=mx.reconnect_max,
            forced_logout_delay=mx.forced_logout_delay,
            call_ttl=mx.call_info_ttl,
            directory_ttl=mx.directory_ttl,
            call_log_ttl=mx.call_log_ttl,
            resume_concurrency=mx.resume_concurrency,
            resume_wait=mx.resume_wait,
            sign_in_wait=mx.sign_in_wait if mx.sign_in_wait is not None else attempt,
        )


@dataclass
class SessionStats:
    """Counters for metrics; ``live_sessions`` is a gauge kept up to date by the manager."""

    logins_ok: int = 0
    logins_failed: int = 0  # the MX rejected the credentials
    login_errors: int = 0  # connect/TLS/protocol/timeout errors while logging in
    mx_timeouts: int = 0  # MXTimeout seen while logging in (the API may add its own)
    reconnects: int = 0  # successful re-logins after a session ended
    reconnect_failures: int = 0
    sessions_ended: int = 0
    forced_logouts: int = 0
    needs_reauth: int = 0
    monitor_failures: int = 0
    events: int = 0
    listener_errors: int = 0
    live_sessions: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


# ----------------------------------------------------------------------------------------------
# the borrowed view
# ----------------------------------------------------------------------------------------------


@dataclass
class UserSession:
    """What an API handler borrows for one request: the live MX session of one user.

    Handlers must not change it (``get`` hands the same view out again while the MX session is the
    same); ``mx`` stays the session that was live then (if it dies mid-request its calls raise the
    connector's errors). ``calls`` and ``recordings`` belong
    to the user and survive reconnects."""

    login: str
    info: LoginInfo
    mx: MXSession
    calls: CallInfoCache
    recordings: RecordingList
    directory_cache: DirectoryCache = field(repr=False)
    call_log_cache: CallLogCache = field(repr=False)
    # what the API rendered from this view (the GET /auth answer), reused while the view is
    rendered: dict[str, Any] = field(default_factory=dict, repr=False)

    async def directory(self) -> list[Contact]:
        """The MX address book, from the per-MX cache (one fetch for concurrent misses), kept
        until an address-book change event of that MX (``AddressBookChanged``) or the TTL."""
        return await self.directory_cache.get(self.mx.directory)

    async def call_log(self, since: int | None = None) -> list[CallLogEntry]:
        """The user's call log (records after ``since``), from the per-user cache: one MX query
        for concurrent requests, kept until a call ends, the session reconnects or the TTL."""
        mx = self.mx
        return await self.call_log_cache.get(since, lambda: mx.call_log(since))

    async def directory_as(self, render: Callable[[list[Contact]], R]) -> R:
        """``render(directory)``, computed once per cached directory and dropped with it (the
        pre-rendered ``GET /contacts`` answer); ``render`` must not change the list."""
        return await self.directory_cache.get_derived(self.mx.directory, render)

    async def call_log_as(self, since: int | None, render: Callable[[list[CallLogEntry]], R]) -> R:
        """``render(call_log(since))``, computed once per cached log and dropped with it."""
        mx = self.mx
        return await self.call_log_cache.get_derived(since, lambda: mx.call_log(since), render)

    def call_log_changed(self) -> None:
        """An API operation ended a call leg: the next ``call_log`` asks the MX again (the
        ``ConnectionCleared`` event may still be on its way to the owner)."""
        self.call_log_cache.invalidate()


# ----------------------------------------------------------------------------------------------
# the owner of one user's MX session
# ----------------------------------------------------------------------------------------------


def _record_account(record: UserRecord) -> MXAccount:
    host, port = split_host(record.host)
    return MXAccount(host=host, port=port, login=record.mx_login or record.login, password=record.password)


class _Owner:
    """One user's owner task and everything that outlives a single MX session."""

    def __init__(
        self,
        manager: "SessionManager",
        login: str,
        account: MXAccount,
        server_id: str = "",
        session: MXSession | None = None,
    ) -> None:
        self.manager = manager
        self.login = login
        self.account = account
        self.server_id = server_id
        self.session: MXSession | None = session
        self.info: LoginInfo | None = session.login_info if session is not None else None
        self.state = LIVE if session is not None else RECONNECTING
        self.calls = CallInfoCache(manager.options.call_ttl)
        self.recordings = RecordingList()
        self.call_log = CallLogCache(manager.options.call_log_ttl, max_keys=CALL_LOG_KEYS, copy=list)
        self.wake = asyncio.Event()
        self.connect_lock = asyncio.Lock()  # every MX login for this user goes through it
        self.failures = 0
        self.next_delay = 0.0
        self.next_attempt_at = 0.0
        self.attempting = False
        self.closing = False
        self.last_error: str = ""
        self.last_end: str = ""
        self.attempts = 0  # finished attempts (success or not), for start() to wait on
        self._waiters: list[asyncio.Future[MXSession]] = []
        self._first_attempt: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if session is not None:
            self._first_attempt.set_result(None)
        self.task: asyncio.Task[None] | None = None
        self._last_view: UserSession | None = None
        self._last_view_account: MXAccount | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"mx-owner:{self.login}")

    @property
    def finished(self) -> bool:
        return self.task is not None and self.task.done()

    def view(self, session: MXSession | None = None) -> UserSession:
        """A borrowed view of ``session`` (default: the current one). The last one is reused
        while session and account are the same (it holds only references to them and to the
        owner's caches): every API request asks for one."""
        session = session if session is not None else self.session
        if session is None:
            raise SessionUnavailable(self.retry_after())
        last = self._last_view
        if last is not None and last.mx is session and self._last_view_account is self.account:
            return last
        self._last_view = self._new_view(session)
        self._last_view_account = self.account
        return self._last_view

    def _new_view(self, session: MXSession) -> UserSession:
        info = session.login_info
        return UserSession(
            login=self.login,
            info=info,
            mx=session,
            calls=self.calls,
            recordings=self.recordings,
            directory_cache=self.manager._directory_for(self.account, info),
            call_log_cache=self.call_log,
        )

    def retry_after(self) -> int:
        loop = asyncio.get_running_loop()
        remaining = self.next_attempt_at - loop.time()
        if self.attempting or remaining <= 0:
            return 1
        return max(1, math.ceil(remaining))

    async def _run(self) -> None:
        try:
            while not self.closing:
                session = self.session
                if session is None:
                    await self._wait_backoff()
                    if self.closing:
                        return
                    if not await self._attempt():
                        return
                    continue
                ended = await self._consume(session)
                if self.session is session:  # not replaced by a sign-in with new credentials
                    self.session = None
                    await self._ended(session, ended)
                else:
                    await _quietly(session.close())
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not kill the user silently forever
            log.exception("mx session owner for %s crashed", self.login)
            self._set_state(RECONNECTING)
            self._reject(MXError("session owner failed"))
            raise
        finally:
            if not self._first_attempt.done():
                self._first_attempt.set_result(None)
            if self.closing:
                self._reject(SessionUnavailable(1, "mx session is closing"))

    async def _wait_backoff(self) -> None:
        delay = self.next_delay
        loop = asyncio.get_running_loop()
        if delay > 0 and not self.wake.is_set():
            self.next_attempt_at = loop.time() + delay
            try:
                await asyncio.wait_for(self.wake.wait(), delay)
            except TimeoutError:
                pass
        self.wake.clear()

    async def _attempt(self) -> bool:
        """One login attempt; False when the owner must stop (needs re-auth, user gone)."""
        async with self.connect_lock:
            if self.session is not None or self.closing:  # a sign-in already brought a session
                return True
            if not await self._refresh_from_store():
                return False
            self.attempting = True
            try:
                async with self.manager._attempt_slots:
                    session = await self.manager._establish(self.account)
            except MXLoginFailed as exc:
                await self._mark_needs_reauth(exc)
                return False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - MXError, OSError, or a connector bug: retry
                self._attempt_failed(exc)
                return True
            finally:
                self.attempting = False
                self.attempts += 1
                if not self._first_attempt.done():
                    self._first_attempt.set_result(None)
            if self.closing:
                await _quietly(session.logout())
                return False
            if self.state != LIVE and self.info is not None:
                self.manager.stats.reconnects += 1
            self._go_live(session)
            return True

    async def _refresh_from_store(self) -> bool:
        """Another instance (or the admin) may have logged the user out or changed the password."""
        try:
            record = await self.manager.store.get_user(self.login)
        except StoreError as exc:
            log.warning("store unavailable while reconnecting %s: %s", self.login, exc)
            return True
        if record is None:
            log.info("user %s is no longer stored; not reconnecting", self.login)
            self.manager._forget(self)
            self._reject(NotSignedIn())
            return False
        if record.needs_reauth:
            self._set_state(NEEDS_REAUTH)
            self.manager._needs_reauth.add(self.login)
            self._reject(NotSignedIn())
            return False
        try:
            account = _record_account(record)
        except ValueError:
            return True
        if account != self.account:
            self.account = account
        return True

    def _attempt_failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = str(exc) or type(exc).__name__
        self.manager.stats.reconnect_failures += 1
        self.next_delay = self.manager._backoff(self.failures)
        log.info("mx login for %s failed (%s); retrying in %.1fs", self.login, self.last_error, self.next_delay)
        if self.state in (LIVE, FORCED_LOGOUT):
            self._set_state(RECONNECTING)
        self._reject(exc)

    async def _mark_needs_reauth(self, exc: MXLoginFailed) -> None:
        log.warning("mx rejected the stored password of %s (%s); marking needs_reauth", self.login, exc)
        self.last_error = str(exc)
        self.manager.stats.needs_reauth += 1
        self._set_state(NEEDS_REAUTH)
        self.manager._needs_reauth.add(self.login)
        try:
            await self.manager.store.set_user_needs_reauth(self.login, True)
        except StoreError as store_exc:
            log.error("cannot mark %s needs_reauth in the store: %s", self.login, store_exc)
        self._reject(exc)

    def _go_live(self, session: MXSession) -> None:
        self.call_log.invalidate()  # a new session: calls may have ended while we were away
        self.session = session
        self.info = session.login_info
        self.failures = 0
        self.next_delay = 0.0
        self.last_error = ""
        self.manager._needs_reauth.discard(self.login)
        self._set_state(LIVE)
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(session)

    def _call_log_changed(self) -> None:
        """A call leg ended: drop the cached call log now and once more when the MX has surely
        written the record (a ``GET /calls`` in between must not keep a log without it)."""
        self.call_log.invalidate()
        asyncio.get_running_loop().call_later(CALL_LOG_SETTLE, self.call_log.invalidate)

    def _reject(self, exc: BaseException) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # a waiter that already timed out must not log "never retrieved"

    def _set_state(self, state: str) -> None:
        self.state = state
        self.manager._update_live()

    async def _consume(self, session: MXSession) -> SessionEnded:
        ext = session.login_info.extension
        manager = self.manager
        try:
            async for event in session.events():
                manager.stats.events += 1
                try:
                    self.calls.observe(event, ext)
                    self.recordings.observe(event)
                    if isinstance(event, CALL_LOG_EVENTS):
                        self._call_log_changed()
                    elif isinstance(event, AddressBookChanged):  # spec §5.9; never pushed
                        manager.invalidate_directory(self.account.address)
                except Exception:  # noqa: BLE001 - bookkeeping must never stop the stream
                    log.exception("call cache update failed for %s", self.login)
                manager._fan_out(self.login, event)
                if isinstance(event, SessionEnded):
                    return event
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            log.warning("event stream of %s failed: %s", self.login, exc)
            return SessionEnded(mode="error", reason=str(exc))
        return SessionEnded(mode="closed", reason="event stream ended")

    async def _ended(self, session: MXSession, ended: SessionEnded) -> None:
        await _quietly(session.close())
        self.manager.stats.sessions_ended += 1
        self.last_end = ended.mode
        if self.closing:
            return
        if ended.mode == "forced":
            self.manager.stats.forced_logouts += 1
            self.next_delay = self.manager.options.forced_logout_delay
            self._set_state(FORCED_LOGOUT)
            log.warning(
                "mx forced %s out (session taken over?); not reconnecting for %.0fs unless they sign in",
                self.login, self.next_delay,
            )
        else:
            self.failures = 0
            self.next_delay = self.manager._backoff(0)
            self._set_state(RECONNECTING)
            log.info("mx session of %s ended (%s %s); reconnecting", self.login, ended.mode, ended.reason)

    # -- used by the manager ------------------------------------------------------------------
    async def join(self, timeout: float) -> MXSession:
        """Wait for the owner's next attempt (waking it from its backoff)."""
        if self.session is not None and self.state == LIVE and self.session.is_alive:
            return self.session
        if self.finished:
            raise NotSignedIn()
        fut: asyncio.Future[MXSession] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self.wake.set()
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            raise MXTimeout() from None
        finally:
            if fut in self._waiters:
                self._waiters.remove(fut)

    async def adopt(self, session: MXSession, account: MXAccount, server_id: str) -> None:
        """Take over a session a sign-in opened with new credentials; end the old one."""
        old = self.session
        self.account = account
        if server_id:
            self.server_id = server_id
        if self.state != LIVE and self.info is not None:
            self.manager.stats.reconnects += 1
        self._go_live(session)
        self.wake.set()
        if old is not None and old is not session:
            await _quietly(old.logout())

    async def shutdown(self, *, logout: bool) -> None:
        """Stop the owner: ``<logout/>`` (or just close) the session and end the task."""
        self.closing = True
        self.wake.set()
        session, self.session = self.session, None
        if session is not None:
            await _quietly(session.logout() if logout else session.close())
        if self.task is not None and not self.task.done():
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self._reject(NotSignedIn())
        if self.state == LIVE:
            self._set_state(RECONNECTING)


async def _quietly(aw: Any) -> None:
    try:
        await aw
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - closing is best effort
        log.debug("ignored while closing: %s", exc)


# ----------------------------------------------------------------------------------------------
# the manager
# ----------------------------------------------------------------------------------------------


class SessionManager:
    """All users' MX sessions of this process."""

    def __init__(
        self,
        connector: Connector,
        store: Store,
        config: Config,
        *,
        options: SessionOptions | None = None,
    ) -> None:
        self.connector = connector
        self.store = store
        self.config = config
        self.options = options or SessionOptions.from_config(config)
        self.stats = SessionStats()
        self._owners: dict[str, _Owner] = {}
        self._needs_reauth: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._listeners: list[Listener] = []
        self._directories: dict[tuple[str, str], DirectoryCache] = {}
        self._attempt_slots = asyncio.Semaphore(self.options.resume_concurrency)
        self._stopping = False
        self._random = random.Random()

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Resume every stored user concurrently (bounded); wait a bounded time for first attempts.

        Failures do not block start: those owners simply continue in backoff."""
        self._stopping = False
        users = await self.store.list_users()
        owners: list[_Owner] = []
        for record in users:
            if record.needs_reauth:
                self._needs_reauth.add(record.login)
                continue
            if record.login in self._owners:
                continue
            try:
                account = _record_account(record)
            except ValueError:
                log.error("stored user %s has a bad host %r; not resumed", record.login, record.host)
                continue
            owner = _Owner(self, record.login, account)
            self._owners[record.login] = owner
            owner.start()
            owners.append(owner)
        if not owners:
            return
        log.info("resuming %d stored users", len(owners))
        # healthy users are live when start() returns; a slow or dead MX does not hold start-up
        firsts = [asyncio.shield(o._first_attempt) for o in owners]
        await asyncio.wait(firsts, timeout=self.options.resume_wait)
        live = sum(1 for o in owners if o.state == LIVE)
        log.info("resumed %d of %d stored users; the rest keep retrying", live, len(owners))

    async def stop(self) -> None:
        """``<logout/>`` every MX session concurrently, then end the owner tasks."""
        self._stopping = True
        owners = list(self._owners.values())
        self._owners.clear()
        if owners:
            tasks = [asyncio.create_task(o.shutdown(logout=True)) for o in owners]
            done, pending = await asyncio.wait(tasks, timeout=self.options.stop_timeout)
            for t in pending:
                t.cancel()
            for o in owners:
                if o.task is not None and not o.task.done():
                    o.task.cancel()
            await asyncio.gather(*tasks, *(o.task for o in owners if o.task), return_exceptions=True)
        self._update_live()

    # -- sign-in -----------------------------------------------------------------------------
    async def sign_in(self, prov: ProvisionedAccount) -> UserSession:
        """Make sure ``prov.login`` has a live MX session with these credentials; store the user.

        Raises MXLoginFailed (→403), MXTimeout (→504), MXConnectionFailed/MXTLSError/MXError (→503).
        """
        if self._stopping:
            raise SessionUnavailable(5, "server is stopping")
        login = prov.login
        async with self._lock(login):
            owner = self._owners.get(login)
            if owner is not None and owner.finished:
                self._owners.pop(login, None)
                owner = None
            if owner is None:
                session = await self._establish_and_store(prov)
                owner = _Owner(self, login, prov.account, prov.server_id, session)
                self._owners[login] = owner
                self._needs_reauth.discard(login)
                owner.start()
                self._update_live()
                return owner.view(session)

            if owner.account == prov.account:
                live = owner.session
                if owner.state == LIVE and live is not None and live.is_alive:
                    await self._store_user(prov)
                    return owner.view(live)
                wait = self.options.sign_in_wait
                if wait is None:
                    wait = self.config.mx.connect_timeout + 2 * self.config.mx.response_timeout + 1.0
                joined = await owner.join(wait)
                await self._store_user(prov)
                return owner.view(joined)

            # Different credentials (or another MX): a fresh MX login is the only judge. The live
            # session (if any) is untouched unless the new login succeeds.
            async with owner.connect_lock:
                session = await self._establish_and_store(prov)
                await owner.adopt(session, prov.account, prov.server_id)
            log.info("credentials of %s changed; verified by a fresh mx login", login)
            return owner.view(session)

    async def _establish_and_store(self, prov: ProvisionedAccount) -> MXSession:
        """A fresh MX session for ``prov``, its user stored; logged out again if storing fails."""
        session = await self._establish(prov.account)
        try:
            await self._store_user(prov)
        except BaseException:
            await _quietly(session.logout())
            raise
        return session

    async def _establish(self, account: MXAccount) -> MXSession:
        """Log in and start the monitor; a session whose monitor fails is closed and not used."""
        try:
            session = await self.connector.login(account)
        except MXLoginFailed:
            self.stats.logins_failed += 1
            raise
        except MXTimeout:
            self.stats.mx_timeouts += 1
            self.stats.login_errors += 1
            raise
        except (MXError, OSError):
            self.stats.login_errors += 1
            raise
        try:
            await session.start_monitor()
        except MXUnsupported:
            log.info("connector has no monitor; %s gets no events", account.login)
        except BaseException as exc:
            self.stats.monitor_failures += 1
            if isinstance(exc, MXTimeout):
                self.stats.mx_timeouts += 1
            log.warning("monitor start for %s failed: %s", account.login, exc)
            await _quietly(session.close())
            raise
        self.stats.logins_ok += 1
        return session

    async def _store_user(self, prov: ProvisionedAccount) -> None:
        await self.store.put_user(
            UserRecord(
                login=prov.login,
                host=_host_text(prov.account),
                mx_login=prov.account.login,
                password=prov.account.password,
                needs_reauth=False,
            )
        )

    # -- borrowing ---------------------------------------------------------------------------
    def get(self, login: str) -> UserSession:
        """The live session, else SessionUnavailable (reconnecting) or NotSignedIn."""
        owner = self._owners.get(login)
        if owner is None or owner.finished or owner.state == NEEDS_REAUTH:
            raise NotSignedIn()
        session = owner.session
        if owner.state == LIVE and session is not None:
            if session.is_alive:
                return owner.view()
            raise SessionUnavailable(1)
        if owner.state == FORCED_LOGOUT:
            raise SessionUnavailable(owner.retry_after(), "mx session was taken over (forced logout)")
        raise SessionUnavailable(owner.retry_after())

    def live_logins(self) -> list[str]:
        return sorted(login for login, o in self._owners.items() if o.state == LIVE and o.session is not None)

    def state(self, login: str) -> str:
        """``live`` | ``reconnecting`` | ``forced_logout`` | ``needs_reauth`` | ``absent``."""
        owner = self._owners.get(login)
        if owner is not None:
            if owner.state == NEEDS_REAUTH:
                return NEEDS_REAUTH
            if owner.finished:
                return NEEDS_REAUTH if login in self._needs_reauth else ABSENT
            return owner.state
        return NEEDS_REAUTH if login in self._needs_reauth else ABSENT

    def describe(self, login: str) -> dict[str, Any] | None:
        """State details for the admin API (no secrets)."""
        owner = self._owners.get(login)
        if owner is None:
            return None
        return {
            "login": login,
            "state": self.state(login),
            "host": owner.account.address,
            "mx": owner.info.server_id if owner.info else owner.server_id,
            "ext": owner.info.extension if owner.info else "",
            "failures": owner.failures,
            "lastError": owner.last_error,
            "lastEnd": owner.last_end,
            "retryAfter": owner.retry_after() if owner.state != LIVE else 0,
            "calls": len(owner.calls),
            "recordings": len(owner.recordings),
        }

    def logins(self) -> list[str]:
        """Every login with an owner (any state)."""
        return sorted(self._owners)

    # -- logout ------------------------------------------------------------------------------
    async def logout(self, login: str) -> bool:
        """Close the MX session (``<logout/>``), delete the user and their device tokens."""
        async with self._lock(login):
            owner = self._owners.pop(login, None)
            if owner is not None:
                await owner.shutdown(logout=True)
            self._needs_reauth.discard(login)
            self._update_live()
            return await self.store.delete_user(login)

    async def drop(self, login: str) -> bool:
        """Close the MX session and stop reconnecting, but keep the stored user (admin use)."""
        async with self._lock(login):
            owner = self._owners.pop(login, None)
            if owner is None:
                return False
            await owner.shutdown(logout=True)
            self._update_live()
            return True

    # -- events ------------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        """``listener(login, event)`` for every MX event; it must not block (queue the work)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        try:
            self._listeners.remove(listener)
        except ValueError:
            pass

    def _fan_out(self, login: str, event: Event) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(login, event)
            except Exception:  # noqa: BLE001 - one bad listener must not stop the others
                self.stats.listener_errors += 1
                log.exception("event listener failed for %s", login)

    # -- internals ---------------------------------------------------------------------------
    def _lock(self, login: str) -> asyncio.Lock:
        lock = self._locks.get(login)
        if lock is None:
            lock = self._locks[login] = asyncio.Lock()
        return lock

    def _forget(self, owner: _Owner) -> None:
        if self._owners.get(owner.login) is owner:
            del self._owners[owner.login]
        self._update_live()

    def _backoff(self, failures: int) -> float:
        base = min(self.options.reconnect_max, self.options.reconnect_min * (2 ** min(failures, 30)))
        return base * self._random.uniform(1.0 - self.options.jitter, 1.0)

    def _update_live(self) -> None:
        self.stats.live_sessions = sum(1 for o in self._owners.values() if o.state == LIVE and o.session is not None)

    def _directory_for(self, account: MXAccount, info: LoginInfo) -> DirectoryCache:
        key = (account.address, info.server_id)
        cache = self._directories.get(key)
        if cache is None:
            cache = self._directories[key] = DirectoryCache(self.options.directory_ttl, copy=list)
        return cache

    def invalidate_directory(self, host: str | None = None) -> None:
        """Drop cached directories (all, or those of one ``host:port``): address-book changes."""
        for (address, _), cache in self._directories.items():
            if host is None or address == host:
                cache.invalidate()


def _host_text(account: MXAccount) -> str:
    host = f"[{account.host}]" if ":" in account.host else account.host
    return f"{host}:{account.port}"
