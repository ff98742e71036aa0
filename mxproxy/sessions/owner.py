"""The owner task of one user: the only thing that decides the user's MX session is gone.

It logs in, starts the monitor, consumes the session's events (call-info cache, recordings list,
fan-out to listeners) and reconnects with exponential backoff and jitter (see the package doc).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from mxproxy.callcache import CallInfoCache
from mxproxy.connectors.base import (
    AddressBookChanged,
    ConnectionCleared,
    Diverted,
    Failed,
    LoginInfo,
    MXAccount,
    MXSession,
    SessionEnded,
    Transferred,
)
from mxproxy.connectors.errors import MXError, MXLoginFailed, MXTimeout
from mxproxy.logs import log_context
from mxproxy.provisioning import split_host
from mxproxy.recordings import RecordingList
from mxproxy.sessions.errors import NotSignedIn, SessionUnavailable
from mxproxy.sessions.states import (
    FORCED_LOGOUT,
    LIVE,
    NEEDS_REAUTH,
    RECONNECTING,
    RELEASED_NEEDS_REAUTH,
    RELEASED_SIGNED_OUT,
)
from mxproxy.sessions.view import CALL_LOG_KEYS, CallLogCache, UserSession
from mxproxy.store.base import StoreError, UserRecord

if TYPE_CHECKING:
    from mxproxy.sessions.manager import SessionManager

log = logging.getLogger("mxproxy.sessions")

# Events after which the user's call log may hold a new record: the end of one of their call legs
# (hang-up, a call diverted away unanswered, a failed call, a transfer handing the call on). The
# protocol has no call-log change event (spec §4.3, §5).
CALL_LOG_EVENTS = (ConnectionCleared, Diverted, Failed, Transferred)
# The MX may write the record just after it sends the event: invalidate once more after this.
CALL_LOG_SETTLE = 2.0


def record_account(record: UserRecord) -> MXAccount:
    host, port = split_host(record.host)
    return MXAccount(host=host, port=port, login=record.mx_login or record.login, password=record.password)


class Owner:
    """One user's owner task and everything that outlives a single MX session."""

    def __init__(
        self,
        manager: "SessionManager",
        login: str,
        account: MXAccount,
        server_id: str = "",
        session: MXSession | None = None,
        *,
        fresh: bool = False,
    ) -> None:
        self.manager = manager
        self.since = time.time()  # when this instance began running the user (event history floor)
        self._fresh = fresh  # the record was read just now: the first attempt need not read it again
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
        with log_context(user=self.login):  # not the request that happened to start this task
            await self._own()

    async def _own(self) -> None:
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
                    self.manager._update_live(self)
                    await self._ended(session, ended)
                else:
                    await quietly(session.close())
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
            fresh, self._fresh = self._fresh, False
            if not fresh and not await self._refresh_from_store():
                return False
            ownership = self.manager.ownership
            if ownership is not None and not ownership.holds(self.login):
                self._attempt_failed(SessionUnavailable(1, "lease not held"))  # fenced: wait
                return True
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
                await quietly(session.logout())
                return False
            if self.state != LIVE and self.info is not None:
                self.manager.stats.reconnects += 1
                log.info("mx session of %s reconnected to %s after %d failed attempt(s)", self.login,
                         self.account.address, self.failures)
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
            self.manager._released(self.login, RELEASED_SIGNED_OUT)
            return False
        if record.needs_reauth:
            self._set_state(NEEDS_REAUTH)
            self.manager._needs_reauth.add(self.login)
            self._reject(NotSignedIn())
            self.manager._released(self.login, RELEASED_NEEDS_REAUTH)
            return False
        try:
            account = record_account(record)
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
        self.manager._released(self.login, RELEASED_NEEDS_REAUTH)

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
        self.manager._update_live(self)

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
        await quietly(session.close())
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
            await quietly(old.logout())

    async def shutdown(self, *, logout: bool) -> None:
        """Stop the owner: ``<logout/>`` (or just close) the session and end the task."""
        self.closing = True
        self.wake.set()
        session, self.session = self.session, None
        self.manager._update_live(self)
        if session is not None:
            await quietly(session.logout() if logout else session.close())
        if self.task is not None and not self.task.done():
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self._reject(NotSignedIn())
        if self.state == LIVE:
            self._set_state(RECONNECTING)


async def quietly(aw: Any) -> None:
    try:
        await aw
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - closing is best effort
        log.debug("ignored while closing: %s", exc)
