"""Cluster membership and per-user leases: which users this instance may run.

One renewal round every ``leaseTTL / 3``: heartbeat, read the live members and the stored users
with their leases, place every user on its rendezvous owner, and renew or take this instance's
share in one statement. Newly held users are started on the session manager, lost ones are
logged out. A lease is trusted locally only until ``start of the round that renewed it + TTL``
(monotonic clock, so a SIGSTOPped process wakes up fenced); pushes are additionally fenced in the
store by the lease's epoch (``Store.claim_push``). See docs/architecture.md, "Cluster mode".
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from mxproxy.config import ConfigError

from mxproxy.sessions.errors import ServedElsewhere, SessionUnavailable
from mxproxy.sessions.placement import owner_of
from mxproxy.store.base import Lease, Member, Store, StoreError

if TYPE_CHECKING:
    from mxproxy.sessions.manager import SessionManager

log = logging.getLogger("mxproxy.cluster")

#: Share of the TTL a local lease is trusted less than the store's: margin for clock rates.
SAFETY = 0.1
#: Housekeeping (dead instances, old push claims, leases of deleted users) every this many rounds.
HOUSEKEEPING_ROUNDS = 12
#: An instance silent this many TTLs is removed from the membership table.
DEAD_AFTER_TTLS = 20


def generated_instance_id() -> str:
    host = socket.gethostname().split(".")[0] or "mxproxy"
    return f"{host}-{secrets.token_hex(3)}"


def _pid_space() -> str:
    """Which pids this process can see: the boot and the pid namespace (containers on one host
    share a hostname-less view of pids only within their own namespace)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        space = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    return f"{boot}-{space}"


def process_holder() -> str:
    """Who runs an instance id: ``host:pid:token:pid-space`` (the token tells a reused pid apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}:{_pid_space()}"


def holder_is_dead(holder: str) -> bool:
    """The holder ran where this process sees the same pids (same host, boot and pid namespace)
    and its pid is gone: a crash moments ago, no need to wait for its heartbeat to lapse.
    Anything else (another host or container, or a pid that exists) cannot be told from here."""
    parts = holder.split(":")
    if len(parts) != 4 or not parts[1].isdigit():
        return False
    host, pid, _, space = parts
    if host != socket.gethostname() or not space or space != _pid_space() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process has that pid now
        return False
    return False


@dataclass(frozen=True)
class ClusterOptions:
    instance_id: str
    url: str  # where peers reach this instance's public API
    lease_ttl: float = 15.0
    claim_window: float = 30.0  # the push duplicate window (the dispatcher's)

    @property
    def renew_interval(self) -> float:
        return self.lease_ttl / 3

    @property
    def handover_grace(self) -> float:
        """How long the previous owner keeps pushing (claims deduplicate) after its lease moved:
        the new owner's MX login must not open a gap in which a new ring is lost."""
        return 2 * self.renew_interval

    @property
    def retry_interval(self) -> float:
        return max(0.1, self.lease_ttl / 15)


@dataclass
class ClusterStats:
    rounds: int = 0
    round_failures: int = 0
    leases_taken: int = 0
    takeovers: int = 0  # taken from another instance (lapsed or handed over)
    leases_lost: int = 0
    handovers: int = 0  # users we named a successor for
    fenced_pushes: int = 0
    last_round_seconds: float = 0.0


@dataclass(frozen=True)
class Held:
    epoch: int
    valid_until: float  # loop time
    taken_at: float = 0.0  # loop time the lease became ours


@dataclass(frozen=True)
class Route:
    """Where a request for one user is served: here, at ``url``, or nowhere right now."""

    local: bool = False
    signed_out: bool = False  # served here because the user is not stored or must sign in again
    url: str | None = None
    instance: str | None = None
    retry_after: int = 1


LOCAL = Route(local=True)
SIGNED_OUT = Route(local=True, signed_out=True)


@dataclass
class _View:
    members: dict[str, Member] = field(default_factory=dict)  # live ones
    leases: dict[str, Lease | None] = field(default_factory=dict)  # every placeable user
    at: float = 0.0  # loop time of the round that read it


class Ownership:
    """This instance's side of the cluster; the session manager asks it before acting."""

    def __init__(self, store: Store, options: ClusterOptions) -> None:
        self.store = store
        self.options = options
        self.id = options.instance_id
        self.stats = ClusterStats()
        self.held: dict[str, Held] = {}
        self.handed: dict[str, Held] = {}  # lost moments ago: may push for the grace, then logout
        self.view = _View()
        self.leaving = False
        self.ready = False  # the last round succeeded within the TTL
        self._manager: SessionManager | None = None
        self._task: asyncio.Task[None] | None = None
        self._round_lock = asyncio.Lock()
        self._rounds_since_housekeeping = 0
        self._last_ok = 0.0
        self._next_lapse = options.renew_interval  # seconds until a lease we want lapses
        self._tasks: set[asyncio.Task[Any]] = set()
        self.holder = process_holder()
        self.replaced = False  # another process took our instance id over (we were paused past the TTL)
        #: the push dispatcher's: send a claim a dead owner made (login, item, message, epoch)
        self.resend: Callable[[str, str, str, int], None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, manager: "SessionManager", *, settle: float | None = None) -> None:
        """Join, give simultaneously starting peers a moment to join too, then take our share."""
        self._manager = manager
        await self._join()
        log.info("cluster: instance %s joined as %s (lease TTL %.1fs)", self.id, self.options.url,
                 self.options.lease_ttl)
        # peers starting at the same moment must see each other before anyone takes users
        settle = min(self.options.renew_interval, 2.0) if settle is None else settle
        if settle > 0:
            await asyncio.sleep(settle)
        try:
            await self.round()
        except StoreError as exc:
            log.warning("cluster: first lease round failed: %s", exc)
        self._task = asyncio.create_task(self._loop(), name="cluster-leases")

    async def _join(self) -> None:
        """Take our instance id, or stop start-up: two processes under one id would renew each
        other's leases (one epoch for two MX sessions per user, pushes from both)."""
        ttl = self.options.lease_ttl
        held = await self.store.join_cluster(self.id, self.options.url, self.holder, ttl=ttl)
        if held is not None and holder_is_dead(held.holder):
            log.info("cluster: instance id %s was held by %s, which is gone; taking it over", self.id, held.holder)
            held = await self.store.join_cluster(self.id, self.options.url, self.holder, ttl=ttl,
                                                 dead_holder=held.holder)
        if held is not None:
            raise ConfigError(
                f"cluster.instanceId: {self.id!r} is already running ({held.holder or 'another process'}, "
                f"{held.url}, heartbeat {held.heartbeat_age:.1f}s ago); give every instance its own id, or "
                f"start this one after the other stopped (or {ttl:.0f}s after its heartbeat ended)"
            )

    async def leave(self, timeout: float | None = None) -> None:
        """Hand every user to its next owner, wait (bounded) until they took them, then leave."""
        if self._task is None or self.replaced:
            return
        self.leaving = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.options.lease_ttl if timeout is None else timeout)
        try:
            while self.held and loop.time() < deadline:
                if not any(m.id != self.id and not m.leaving for m in self.view.members.values()):
                    break  # nobody to hand over to
                try:
                    await self.round()
                except StoreError as exc:
                    log.warning("cluster: handover round failed: %s", exc)
                await asyncio.sleep(min(0.2, self.options.retry_interval))
        finally:
            await self.stop()
            try:
                await self.store.leave_cluster(self.id, self.holder)
            except StoreError as exc:
                log.warning("cluster: could not leave cleanly (%s); leases lapse in %.0fs", exc,
                            self.options.lease_ttl)
            lost = list(self.held)
            self.held.clear()
            if lost and self._manager is not None:
                await self._manager.release_users(lost)
            log.info("cluster: instance %s left", self.id)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.replaced:
            try:
                await self.round()
                # a lease we are to take lapses before the next regular round: be there on time
                delay = min(self.options.renew_interval, max(0.05, self._next_lapse + 0.05))
            except StoreError as exc:
                self.stats.round_failures += 1
                log.warning("cluster: lease round failed: %s", exc)
                delay = self.options.retry_interval
                await self._expire_lapsed(loop.time())
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must survive a bug in one round
                self.stats.round_failures += 1
                log.exception("cluster: lease round crashed")
                delay = self.options.retry_interval
            await asyncio.sleep(delay)

    async def _replaced(self) -> None:
        """Another process runs under our instance id: we were paused (or cut off) past the
        TTL and it took the id over. Stop acting for every user and stop this process."""
        self.replaced = True
        self.ready = False
        lost = list(self.held)
        self.held.clear()
        self.handed.clear()
        log.error("cluster: instance id %s is now held by another process; this one stops (its %d MX "
                  "session(s) are logged out)", self.id, len(lost))
        if lost and self._manager is not None:
            await self._manager.release_users(lost)
        os.kill(os.getpid(), signal.SIGTERM)  # the graceful stop: no handover (the id is not ours)

    async def _resend_unsent(self) -> None:
        try:
            found = await self.store.reclaim_unsent_pushes(self.id, ttl=self.options.lease_ttl,
                                                           window=self.options.claim_window)
        except StoreError as exc:
            log.warning("cluster: cannot look for pushes a dead owner left unsent: %s", exc)
            return
        for login, item, message in found:
            epoch = self.epoch(login)
            if epoch is not None and self.resend is not None:
                self.resend(login, item, message, epoch)

    async def _expire_lapsed(self, now: float) -> None:
        """Renewal failed: users whose lease lapsed locally are stopped (another may take them)."""
        if now - self._last_ok > self.options.lease_ttl:
            self.ready = False
        lapsed = [login for login, held in self.held.items() if held.valid_until <= now]
        if lapsed:
            for login in lapsed:
                del self.held[login]
            self.stats.leases_lost += len(lapsed)
            log.error("cluster: could not renew %d lease(s) within the TTL; stopping their MX sessions",
                      len(lapsed))
            if self._manager is not None:
                await self._manager.release_users(lapsed)

    # -- one round ---------------------------------------------------------------------------
    async def round(self) -> None:
        async with self._round_lock:
            loop = asyncio.get_running_loop()
            started = loop.time()
            ttl = self.options.lease_ttl
            if not await self.store.heartbeat(self.id, self.options.url, leaving=self.leaving, holder=self.holder):
                await self._replaced()
                return
            members = {m.id: m for m in await self.store.members() if m.heartbeat_age < ttl or m.id == self.id}
            gone = [m for m in self.view.members if m not in members]
            placeable = [m.id for m in members.values() if not m.leaving]
            placements = await self.store.placements()
            # taken by a sign-in moments ago: its user may not be stored yet, keep renewing it
            wanted: dict[str, str | None] = {
                login: None for login, held in self.held.items() if started - held.taken_at < 2 * self.options.renew_interval
            }
            before = set(self.held)
            for placement in placements:
                target = owner_of(placement.login, placeable)
                lease = placement.lease
                if lease is not None and lease.instance == self.id:
                    wanted[placement.login] = target if target not in (None, self.id) else None
                elif target == self.id:
                    wanted[placement.login] = None
            renewed = await self.store.renew_leases(self.id, wanted, ttl)
            lapsing = [p.lease.expires_in for p in placements if p.login in wanted and p.login not in renewed
                       and p.lease is not None and p.lease.expires_in > 0]
            self._next_lapse = min(lapsing, default=self.options.renew_interval) - (loop.time() - started)
            valid_until = started + ttl * (1 - SAFETY)
            previous = {p.login: p.lease for p in placements}
            self._apply(renewed, valid_until, previous, before)
            self.view = _View(members=members, leases={**previous, **renewed}, at=started)
            # a member died or we took users over: pushes it claimed and never sent are ours now
            if self.resend is not None and (gone or any(login not in before for login in renewed)):
                self._background(self._resend_unsent(), "cluster-resend")
            # the next round comes when a member's heartbeat lapses, not up to a whole interval
            # later: its users are placed on the survivors in that round (costs nothing while every
            # member heartbeats, as their ages stay below TTL - interval)
            spent = loop.time() - started
            lapses = [ttl - m.heartbeat_age - spent for m in members.values() if m.id != self.id]
            self._next_lapse = min([self._next_lapse, *lapses])
            self.stats.rounds += 1
            self.stats.handovers = sum(1 for lease in renewed.values() if lease.successor)
            self.stats.last_round_seconds = loop.time() - started
            self._last_ok = started
            self.ready = True
            self._rounds_since_housekeeping += 1
        if self._rounds_since_housekeeping >= HOUSEKEEPING_ROUNDS:
            self._rounds_since_housekeeping = 0
            await self.store.cluster_housekeeping(
                dead_after=ttl * DEAD_AFTER_TTLS, claims_after=max(self.options.claim_window * 2, ttl)
            )

    def _apply(self, renewed: dict[str, Lease], valid_until: float, previous: dict[str, Lease | None],
               before: set[str]) -> None:
        now = asyncio.get_running_loop().time()
        new = [login for login in renewed if login not in self.held]
        # only what we held when the round began: a sign-in may have taken a lease since
        lost = [login for login in before if login in self.held and login not in renewed]
        for login in lost:
            lease = self.held.pop(login)
            self.handed[login] = Held(lease.epoch, now + self.options.handover_grace, lease.taken_at)
        for login, lease in renewed.items():
            old = self.held.get(login)
            self.held[login] = Held(lease.epoch, valid_until, old.taken_at if old is not None else now)
        if new:
            self.stats.leases_taken += len(new)
            taken_over = [login for login in new if (old := previous.get(login)) is not None and old.instance != self.id]
            self.stats.takeovers += len(taken_over)
            if taken_over:
                log.info("cluster: took over %d user(s) from other instances", len(taken_over))
        if lost:
            self.stats.leases_lost += len(lost)
            log.info("cluster: %d user(s) now owned elsewhere; logging their MX sessions out", len(lost))
        if self._manager is not None:
            if lost:
                self._background(self._release_later(lost), "cluster-release")
            if new:
                self._background(self._manager.run_users(new), "cluster-run")

    def _background(self, work: Any, name: str) -> None:
        """Start ``work`` without waiting; the task is kept referenced until it is done."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _release_later(self, logins: list[str]) -> None:
        """Log the moved users' sessions out once their new owner had time to log in (one
        renewal interval; the grace on push claims is twice that)."""
        await asyncio.sleep(self.options.renew_interval)
        now = asyncio.get_running_loop().time()
        gone = [login for login in logins if login not in self.held]  # not taken back meanwhile
        for login in logins:
            handed = self.handed.get(login)
            if handed is not None and handed.valid_until <= now + self.options.renew_interval:
                self.handed.pop(login, None)
        if gone and self._manager is not None:
            await self._manager.release_users(gone)

    # -- questions the manager and the API ask -----------------------------------------------
    def holds(self, login: str) -> bool:
        held = self.held.get(login)
        return held is not None and asyncio.get_running_loop().time() < held.valid_until

    def epoch(self, login: str) -> int | None:
        held = self.held.get(login)
        return held.epoch if held is not None and self.holds(login) else None

    def _push_epoch(self, login: str) -> int | None:
        """The epoch we may push ``login``'s events at: our lease's, or the one we just handed
        over (within the grace)."""
        epoch = self.epoch(login)
        if epoch is None:
            handed = self.handed.get(login)
            if handed is None or handed.valid_until <= asyncio.get_running_loop().time():
                return None
            epoch = handed.epoch
        return epoch

    def may_push(self, login: str) -> bool:
        """Checked again between a claim and its sends (a process paused in between wakes fenced)."""
        return self._push_epoch(login) is not None

    async def claim_push(self, login: str, item: str, fingerprint: str, *, message: str | None = None) -> int | None:
        """Fenced: only while we hold the lease (or just handed it over), and only the first
        claim cluster-wide. The epoch claimed at (for ``push_sent``), or None: not ours to push."""
        epoch = self._push_epoch(login)
        if epoch is None:
            self.stats.fenced_pushes += 1
            return None
        claimed = await self.store.claim_push(login, item, fingerprint, instance_id=self.id, epoch=epoch,
                                              window=self.options.claim_window,
                                              grace=self.options.handover_grace, message=message)
        return epoch if claimed else None

    async def push_sent(self, login: str, item: str, epoch: int) -> None:
        await self.store.push_sent(login, item, instance_id=self.id, epoch=epoch)

    def _member_url(self, instance: str) -> str | None:
        member = self.view.members.get(instance)
        return member.url if member is not None else None

    async def _live_members(self) -> dict[str, Member]:
        members = self.view.members
        if not members:
            members = {m.id: m for m in await self.store.members() if m.heartbeat_age < self.options.lease_ttl}
        return members

    async def route(self, login: str) -> Route:
        """Where a request of a signed-in user goes: here (we hold the lease, or the user is not
        stored so the local answer is the right 401), the holder, or 503 while it is replaced."""
        if self.holds(login):
            return LOCAL
        view = self.view
        cached = view.leases.get(login)
        age = asyncio.get_running_loop().time() - view.at
        # a live owner renews every interval, so a lease read in the last round stays valid until
        # its expiry as read: routed on that without a store round trip per request (if it moved
        # meanwhile, the old owner answers 503 + Retry-After, never a wrong answer)
        if cached is not None and cached.instance != self.id and cached.successor is None \
                and cached.expires_in - age > self.options.lease_ttl * SAFETY and age < self.options.renew_interval * 1.5:
            member = view.members.get(cached.instance)
            if member is not None and not member.leaving:  # settled: no store round trip
                return Route(url=member.url, instance=cached.instance)
        lease = await self.store.lease_of(login)
        if lease is not None and lease.expires_in > 0 and lease.instance != self.id:
            url = self._member_url(lease.instance) or await self._fresh_url(lease.instance)
            if url:
                return Route(url=url, instance=lease.instance)
        if lease is not None and lease.instance == self.id and lease.expires_in > 0:
            return Route(retry_after=1)  # taken moments ago; the round starts the session
        record = await self.store.get_user(login)
        if record is None or record.needs_reauth:
            return SIGNED_OUT
        wait = lease.expires_in if lease is not None and lease.expires_in > 0 else self.options.renew_interval
        return Route(retry_after=max(1, int(wait + 0.999)))

    async def _fresh_url(self, instance: str) -> str | None:
        for member in await self.store.members():
            if member.id == instance and member.heartbeat_age < self.options.lease_ttl:
                return member.url
        return None

    async def acquire_for_sign_in(self, login: str, *, forwarded: bool) -> None:
        """Make this instance the owner of ``login`` before its MX session is opened here, or
        raise ServedElsewhere (the API forwards the sign-in) / SessionUnavailable."""
        if self.holds(login):
            return
        if self.leaving:
            raise SessionUnavailable(1, "this instance is handing its users over")
        lease = await self.store.lease_of(login)
        if lease is not None and lease.expires_in > 0 and lease.instance != self.id and lease.successor != self.id:
            url = self._member_url(lease.instance) or await self._fresh_url(lease.instance)
            if url and not forwarded:
                raise ServedElsewhere(lease.instance, url)
            raise SessionUnavailable(max(1, int(lease.expires_in + 0.999)), "the user's owner is being replaced")
        if not forwarded:
            members = await self._live_members()
            target = owner_of(login, [m.id for m in members.values() if not m.leaving] or [self.id])
            if target is not None and target != self.id and (url := self._member_url(target)):
                raise ServedElsewhere(target, url)
        loop = asyncio.get_running_loop()
        started = loop.time()
        renewed = await self.store.renew_leases(self.id, {login: None}, self.options.lease_ttl)
        if login not in renewed:
            raise SessionUnavailable(1, "another instance took this user just now")
        self.held[login] = Held(renewed[login].epoch, started + self.options.lease_ttl * (1 - SAFETY), started)
        self.stats.leases_taken += 1

    async def release(self, logins: Iterable[str]) -> None:
        names = [login for login in logins if self.held.pop(login, None) is not None]
        if names:
            await self.store.release_leases(self.id, names)

    # -- reporting ---------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """``GET /cluster``: members, users per instance, leases about to expire."""
        ttl = self.options.lease_ttl
        per_instance: dict[str, int] = {m: 0 for m in self.view.members}
        expiring: list[dict[str, Any]] = []
        unowned = 0
        for login, lease in sorted(self.view.leases.items()):
            if lease is None or lease.expires_in <= 0:
                unowned += 1
                continue
            per_instance[lease.instance] = per_instance.get(lease.instance, 0) + 1
            if lease.expires_in < ttl / 2 or lease.successor:
                expiring.append({"login": login, "instance": lease.instance, "epoch": lease.epoch,
                                 "expiresIn": round(lease.expires_in, 2), "successor": lease.successor})
        return {
            "instance": self.id,
            "url": self.options.url,
            "leaseTTL": ttl,
            "ready": self.ready,
            "leaving": self.leaving,
            "instances": [
                {"id": m.id, "url": m.url, "startedAt": m.started_at, "heartbeatAge": round(m.heartbeat_age, 2),
                 "leaving": m.leaving, "users": per_instance.get(m.id, 0), "self": m.id == self.id}
                for m in sorted(self.view.members.values(), key=lambda m: m.id)
            ],
            "held": len(self.held),
            "unowned": unowned,
            "expiring": expiring[:100],
            "stats": dict(self.stats.__dict__),
        }
