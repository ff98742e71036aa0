"""The session manager: all users' MX sessions of this process, one owner task per MX login."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Callable

from mxproxy.config import Config
from mxproxy.connectors.base import Connector, Event, LoginInfo, MXAccount, MXSession
from mxproxy.connectors.errors import MXError, MXLoginFailed, MXTimeout, MXUnsupported
from mxproxy.provisioning import ProvisionedAccount
from mxproxy.sessions.errors import NotSignedIn, SessionUnavailable
from mxproxy.sessions.gcpause import hold_full_collections
from mxproxy.sessions.ownership import Ownership
from mxproxy.sessions.options import SessionOptions, SessionStats
from mxproxy.sessions.owner import Owner, quietly, record_account
from mxproxy.sessions.states import (
    ABSENT,
    FORCED_LOGOUT,
    LIVE,
    NEEDS_REAUTH,
    RELEASED_MOVED,
    RELEASED_SHUTDOWN,
    RELEASED_SIGNED_OUT,
)
from mxproxy.sessions.view import DirectoryCache, UserSession
from mxproxy.store.base import Store, StoreError, UserRecord

log = logging.getLogger("mxproxy.sessions")

Listener = Callable[[str, Event], None]
#: ``release_listener(login, reason)``: this instance stopped running ``login``'s session
#: (``moved``, ``signed-out``, ``needs-reauth``, ``shutdown``; see ``mxproxy.events.bus``).
ReleaseListener = Callable[[str, str], None]


class SessionManager:
    """All users' MX sessions of this process."""

    def __init__(
        self,
        connector: Connector,
        store: Store,
        config: Config,
        *,
        options: SessionOptions | None = None,
        ownership: Ownership | None = None,
    ) -> None:
        self.connector = connector
        self.store = store
        self.config = config
        self.options = options or SessionOptions.from_config(config)
        self.stats = SessionStats()
        self._owners: dict[str, Owner] = {}
        self._live: set[Owner] = set()  # owners with a live MX session (``_update_live``)
        self._needs_reauth: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._listeners: list[Listener] = []
        self._release_listeners: list[ReleaseListener] = []
        self._directories: dict[tuple[str, str], DirectoryCache] = {}
        self._attempt_slots = asyncio.Semaphore(self.options.resume_concurrency)
        self._stopping = False
        self._random = random.Random()
        #: In a cluster: which users this instance may run (None: a single instance runs all).
        self.ownership = ownership

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Resume every stored user concurrently (bounded); wait a bounded time for first attempts.

        Failures do not block start: those owners simply continue in backoff. In a cluster only
        this instance's share is resumed, by the lease rounds of ``ownership``."""
        self._stopping = False
        if self.ownership is not None:
            await self.ownership.start(self)
            return
        release = hold_full_collections()  # reading 10,000 records is a burst of objects too
        try:
            users = await self.store.list_users()
        except BaseException:
            release()
            raise
        await self._resume(users, fresh=True, release=release)  # read just now: no second read each

    async def _resume(self, users: list[UserRecord], *, fresh: bool = False,
                      release: Callable[[], None] | None = None) -> None:
        owners: list[Owner] = []
        for record in users:
            if record.needs_reauth:
                self._needs_reauth.add(record.login)
                continue
            if record.login in self._owners:
                continue
            try:
                account = record_account(record)
            except ValueError:
                log.error("stored user %s has a bad host %r; not resumed", record.login, record.host)
                continue
            owner = Owner(self, record.login, account, fresh=fresh)
            self._owners[record.login] = owner
            owner.start()
            owners.append(owner)
        if not owners:
            if release is not None:
                release()
            return
        log.info("resuming %d stored users", len(owners))
        self._hold_gc_until_attempted(owners, release or hold_full_collections())
        # healthy users are live when start() returns; a slow or dead MX does not hold start-up
        firsts = [asyncio.shield(o._first_attempt) for o in owners]
        await asyncio.wait(firsts, timeout=self.options.resume_wait)
        live = sum(1 for o in owners if o.state == LIVE)
        log.info("resumed %d of %d stored users; the rest keep retrying", live, len(owners))

    @staticmethod
    def _hold_gc_until_attempted(owners: list[Owner], release: Callable[[], None]) -> None:
        """No full garbage collection until every one of ``owners`` made its first attempt
        (``release``, a ``gcpause`` hold, bounded by ``HOLD_LIMIT``): each one would walk the
        growing heap of new sessions and find no garbage."""
        pending = len(owners)

        def attempted(_: object) -> None:
            nonlocal pending
            pending -= 1
            if pending == 0:
                release()

        for owner in owners:
            owner._first_attempt.add_done_callback(attempted)

    # -- cluster: the lease rounds start and stop users -----------------------------------------
    async def run_users(self, logins: list[str]) -> None:
        """Leases of ``logins`` became ours: resume their sessions (like a start-up resume)."""
        wanted = {login for login in logins if login not in self._owners}
        if not wanted or self._stopping:
            return
        release = hold_full_collections()  # a takeover is a burst of logins like a start-up resume
        try:
            if len(wanted) > 20:
                records = [r for r in await self.store.list_users() if r.login in wanted]
            else:
                found = [await self.store.get_user(login) for login in sorted(wanted)]
                records = [r for r in found if r is not None]
        except StoreError as exc:
            release()
            log.warning("cannot read %d user(s) whose leases were taken: %s", len(wanted), exc)
            return
        except BaseException:
            release()
            raise
        await self._resume(records, fresh=True, release=release)  # thousands of logins, no second read each

    async def release_users(self, logins: list[str]) -> None:
        """Leases of ``logins`` are gone (moved or lapsed): ``<logout/>`` their sessions here."""
        owners = [o for login in logins if (o := self._owners.get(login)) is not None]
        for owner in owners:
            self._forget(owner)
            self._released(owner.login, RELEASED_MOVED)
        if owners:
            await asyncio.gather(*(o.shutdown(logout=True) for o in owners), return_exceptions=True)
            self._update_live()

    async def hand_over(self) -> None:
        """Before stopping in a cluster: give every user to its next owner (bounded wait)."""
        if self.ownership is not None and not self._stopping:
            self._stopping = True
            await self.ownership.leave()

    async def claim_push(self, login: str, item: str, fingerprint: str) -> bool:
        """True when this instance is to push this event (see ``Ownership.claim_push``); a single
        instance decides alone (its dispatcher's duplicate filter already did)."""
        if self.ownership is None:
            return True
        return await self.ownership.claim_push(login, item, fingerprint) is not None

    async def stop(self) -> None:
        """``<logout/>`` every MX session concurrently, then end the owner tasks."""
        if self.ownership is not None:
            await self.hand_over()
        self._stopping = True
        owners = list(self._owners.values())
        self._owners.clear()
        # in a cluster another instance takes the users over (hand_over named successors, or their
        # leases lapse there): "moved"; a single instance's users have nowhere to go
        reason = RELEASED_MOVED if self.ownership is not None else RELEASED_SHUTDOWN
        for owner in owners:
            self._released(owner.login, reason)
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
    async def sign_in(self, prov: ProvisionedAccount, *, forwarded: bool = False) -> UserSession:
        """Make sure ``prov.login`` has a live MX session with these credentials; store the user.

        Raises MXLoginFailed (→403), MXTimeout (→504), MXConnectionFailed/MXTLSError/MXError (→503);
        in a cluster ServedElsewhere when another instance owns the user (unless ``forwarded``:
        a peer already sent it here).
        """
        if self._stopping:
            raise SessionUnavailable(5, "server is stopping")
        login = prov.login
        if self.ownership is not None:
            await self.ownership.acquire_for_sign_in(login, forwarded=forwarded)
        async with self._lock(login):
            owner = self._owners.get(login)
            if owner is not None and owner.finished:
                self._owners.pop(login, None)
                self._update_live(owner)
                owner = None
            if owner is None:
                session = await self._establish_and_store(prov)
                owner = Owner(self, login, prov.account, prov.server_id, session)
                self._owners[login] = owner
                self._needs_reauth.discard(login)
                owner.start()
                self._update_live(owner)
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
            await quietly(session.logout())
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
            await quietly(session.close())
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
                sign_in_name=prov.sign_in_name,
            )
        )

    # -- borrowing ---------------------------------------------------------------------------
    def get(self, login: str) -> UserSession:
        """The live session, else SessionUnavailable (reconnecting) or NotSignedIn."""
        owner = self._owners.get(login)
        if self.ownership is not None:
            if not self.ownership.holds(login):
                raise SessionUnavailable(1, "the user is served by another instance")
            if owner is None:  # the lease came with the last round; the owner task is starting
                raise SessionUnavailable(1, "the user's mx session is starting on this instance")
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

    def runs(self, login: str) -> bool:
        """Whether this instance runs ``login``'s MX session, live or being brought back
        (reconnecting, waiting after a forced logout): its events are published here."""
        owner = self._owners.get(login)
        if owner is None or owner.finished or owner.state == NEEDS_REAUTH:
            return False
        return self.ownership is None or self.ownership.holds(login)

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
            **({"instance": self.ownership.id} if self.ownership is not None else {}),
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
                self._update_live(owner)
            self._released(login, RELEASED_SIGNED_OUT)
            self._needs_reauth.discard(login)
            existed = await self.store.delete_user(login)  # its lease goes with it
            if self.ownership is not None:
                self.ownership.held.pop(login, None)
            return existed

    async def drop(self, login: str) -> bool:
        """Close the MX session and stop reconnecting, but keep the stored user (admin use)."""
        async with self._lock(login):
            owner = self._owners.pop(login, None)
            if owner is None:
                return False
            await owner.shutdown(logout=True)
            self._update_live(owner)
            self._released(login, RELEASED_SIGNED_OUT)
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

    def add_release_listener(self, listener: ReleaseListener) -> None:
        """``listener(login, reason)`` when this instance stops running ``login`` (lease moved
        or lapsed, sign-out, admin logout/drop, needs re-auth, shutdown); it must not block."""
        self._release_listeners.append(listener)

    def remove_release_listener(self, listener: ReleaseListener) -> None:
        try:
            self._release_listeners.remove(listener)
        except ValueError:
            pass

    def _released(self, login: str, reason: str) -> None:
        for listener in tuple(self._release_listeners):
            try:
                listener(login, reason)
            except Exception:  # noqa: BLE001 - one bad listener must not stop the others
                self.stats.listener_errors += 1
                log.exception("release listener failed for %s", login)

    def login_info(self, login: str) -> LoginInfo | None:
        """The MX login of ``login``'s current (or last) session here: extension and JID."""
        owner = self._owners.get(login)
        return owner.info if owner is not None else None

    def owned_since(self, login: str) -> float | None:
        """When (Unix s) this instance began running ``login`` (None: it does not)."""
        owner = self._owners.get(login)
        return owner.since if owner is not None else None

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

    def _forget(self, owner: Owner) -> None:
        if self._owners.get(owner.login) is owner:
            del self._owners[owner.login]
        self._update_live(owner)

    def _backoff(self, failures: int) -> float:
        base = min(self.options.reconnect_max, self.options.reconnect_min * (2 ** min(failures, 30)))
        return base * self._random.uniform(1.0 - self.options.jitter, 1.0)

    def _update_live(self, owner: Owner | None = None) -> None:
        """Keep ``stats.live_sessions`` true: re-judge ``owner`` alone when only it changed (O(1)),
        every owner otherwise. A recount on each change made resuming n users cost O(n²): at
        10 000 users more CPU than the logins themselves (docs/benchmarks.md, issue 14)."""
        if owner is None:
            self._live.clear()
        for o in (owner,) if owner is not None else self._owners.values():
            if o.state == LIVE and o.session is not None and self._owners.get(o.login) is o:
                self._live.add(o)
            else:
                self._live.discard(o)
        self.stats.live_sessions = len(self._live)

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

